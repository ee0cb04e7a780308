"""structlog set-up: JSON lines in production, a readable console in development.

One configuration for the whole process, done once at start; every line (structlog's, the access
line's and the standard logging module's) goes through one `StderrLines`, which writes the lines
of one event-loop turn together; request context (request id,
principal) comes from the request's log context (adapters/http/logcontext.py), set by the HTTP
middleware. A domain event published while serving a request is not a line of its own: it rides
on that request's access line (`domain_events`), so a request writes one line. Outside a request
(CLI, background work) it is a line of its own. Bodies are never logged.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import sys
import threading
import time
from typing import Any

import msgspec
import structlog
from structlog.typing import EventDict, WrappedLogger

from adapters.events.log import DOMAIN_EVENT
from adapters.http.logcontext import (
    REQUEST_LOG,
    RequestLog,
    structlog_access_line,
    use_access_line_writer,
)
from app.settings import Settings


def configure_logging(settings: Settings) -> None:
    level = logging.getLevelNamesMapping()[settings.LOG_LEVEL]
    if settings.log_format == "json":
        # One processor does what add_log_level, TimeStamper, format_exc_info and JSONRenderer
        # did in a row (the same keys and values): every request writes a line.
        processors: list[structlog.typing.Processor] = [
            fold_domain_event,
            merge_request_context,
            render_json_line,
        ]
    else:
        # Never show frame locals: they hold request bodies, passwords and secrets.
        renderer = structlog.dev.ConsoleRenderer(
            colors=sys.stderr.isatty(), exception_formatter=structlog.dev.plain_traceback
        )
        processors = [
            fold_domain_event,
            merge_request_context,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ]
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.WriteLoggerFactory(file=STDERR_LINES),  # type: ignore[arg-type]
        cache_logger_on_first_use=True,
    )
    if level > logging.INFO:
        use_access_line_writer(_no_access_line)
    elif settings.log_format == "json":
        use_access_line_writer(JsonAccessLine(STDERR_LINES))
    else:
        use_access_line_writer(structlog_access_line)
    # Libraries that use the standard logging module (uvicorn, alembic, sqlalchemy) go to stderr
    # at the same level, without their own access log (the middleware writes one line a request).
    # Their lines are written at once (after any kept ones): uvicorn's worker logs "Finished
    # server process" and then re-raises SIGTERM with the default action in the same turn, which
    # ends the process before a turn-end write; these writes take the kept lines out first.
    logging.basicConfig(
        level=level,
        stream=_StderrNow(STDERR_LINES),
        format="%(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("uvicorn.access").disabled = True


# Kept lines are written at once past this many (a turn that logs a lot).
_MOST_KEPT = 128


class StderrLines:
    """Log lines for whatever sys.stderr is at write time (test runners and daemons swap it).

    On an event loop running in the main thread (a server's), the lines written during one loop
    turn are kept and written together by a callback at the start of the next turn: one write
    call instead of one per line. Anywhere else (no running loop, or another thread, such as a
    test client's loop) a line is written at once, after the kept ones, so lines keep their
    order. Kept lines are also written when there are many, before a fork, at exit and by
    `write_now`; a loop that closes without running its callback leaves them to the next write or
    to exit. A process killed in the middle of a turn (SIGKILL, or a signal's default action)
    loses that turn's kept lines.
    """

    def __init__(self) -> None:
        self._kept: list[str] = []
        # The loop that has a callback scheduled to write the kept lines, if any.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        loop = asyncio._get_running_loop()
        if loop is None or threading.get_ident() != threading.main_thread().ident:
            self._write_kept(text, quiet=False)
            return len(text)
        kept = self._kept
        kept.append(text)
        if self._loop is not loop:
            self._loop = loop
            loop.call_soon(self._end_of_turn)
        elif len(kept) >= _MOST_KEPT:
            self._write_kept(quiet=False)
        return len(text)

    def flush(self) -> None:
        """Nothing to do: every write either keeps its line for the turn's end or flushes."""

    def write_kept(self) -> None:
        """Write the kept lines now (at exit, before a fork, or in a test that reads stderr)."""
        self._write_kept()

    def write_now(self, text: str) -> int:
        """Write the kept lines and `text` now, wherever it is called from."""
        self._write_kept(text, quiet=False)
        return len(text)

    def _end_of_turn(self) -> None:
        self._loop = None
        self._write_kept()

    def _write_kept(self, text: str = "", *, quiet: bool = True) -> None:
        """Write the kept lines, then `text`. Called by a log call (not `quiet`), an error
        reaches it, as it always did; at the end of a turn or at exit, there is nobody to tell,
        and raising in a loop callback would log an error that fails to write every turn."""
        with self._lock:
            kept = self._kept
            count = len(kept)  # the main thread may append meanwhile: take only these
            if count:
                text = "".join(kept[:count]) + text
                del kept[:count]
            if text:
                try:
                    sys.stderr.write(text)
                    sys.stderr.flush()
                except (OSError, ValueError):  # a closed or broken stderr
                    if not quiet:
                        raise


class _StderrNow:
    """A stream for the standard logging module: each line written at once, in order."""

    def __init__(self, lines: StderrLines) -> None:
        self.write = lines.write_now

    def flush(self) -> None:
        pass


STDERR_LINES = StderrLines()
atexit.register(STDERR_LINES.write_kept)
os.register_at_fork(before=STDERR_LINES.write_kept)


# structlog's add_log_level: `warn` is an alias of warning, `exception` logs at error.
_LEVEL_OF_METHOD = {"warn": "warning", "exception": "error"}


def fold_domain_event(_logger: WrappedLogger, _name: str, event_dict: EventDict) -> EventDict:
    """Inside a request, keep a domain event for the request's access line instead of a line."""
    if event_dict.get("event") == DOMAIN_EVENT:
        context = REQUEST_LOG.get()
        if context is not None and context.open:
            context.add_event({k: v for k, v in event_dict.items() if k != "event"})
            raise structlog.DropEvent
    return event_dict


def merge_request_context(_logger: WrappedLogger, _name: str, event_dict: EventDict) -> EventDict:
    """The request's fields (request id, principal, ...); the call's own keys win."""
    context = REQUEST_LOG.get()
    if context is not None:
        for key, value in context.fields.items():
            event_dict.setdefault(key, value)
    return event_dict


def render_json_line(logger: WrappedLogger, name: str, event_dict: EventDict) -> str:
    """level, timestamp (RFC 3339 UTC, `Z`), the formatted exception if any, as one JSON line."""
    event_dict["level"] = _LEVEL_OF_METHOD.get(name, name)
    event_dict["timestamp"] = utc_timestamp()
    if "exc_info" in event_dict:
        event_dict = structlog.processors.format_exc_info(logger, name, event_dict)
    return _json_dumps(event_dict)


def _json_dumps(obj: Any, **_: object) -> str:
    return msgspec.json.encode(obj, enc_hook=str).decode()


class JsonAccessLine:
    """The access line in JSON, without structlog's bound logger and processor chain.

    It writes exactly what the structlog path writes for `structlog_access_line` (keys, order,
    values): the call's keys, `event` (structlog sets it after them), the request's fields the
    call does not have, then level and timestamp. It runs on every request."""

    __slots__ = ("_encode", "_write")

    def __init__(self, out: StderrLines) -> None:
        self._encode = msgspec.json.Encoder(enc_hook=str).encode
        self._write = out.write

    def __call__(
        self,
        context: RequestLog,
        method: str,
        route: str,
        path: str,
        status: int,
        duration_ms: float,
        client: str,
    ) -> None:
        fields = context.fields
        line: dict[str, Any] = {
            "method": method,
            "route": route,
            "path": path,
            "status": status,
            "duration_ms": duration_ms,
            "client": client,
            "principal": fields.get("principal"),
        }
        if context.events:
            line["domain_events"] = context.events
        line["event"] = "request"
        for key, value in fields.items():
            if key not in line:
                line[key] = value
        line["level"] = "info"
        line["timestamp"] = utc_timestamp()
        self._write(self._encode(line).decode() + "\n")


def _no_access_line(*_: object) -> None:
    """LOG_LEVEL above INFO: no access lines."""


class _SecondPrefix:
    """`YYYY-MM-DDTHH:MM:SS` of the last whole UTC second asked for."""

    second = -1
    text = ""


def utc_timestamp() -> str:
    """`datetime.now(UTC).isoformat()` with `Z` for `+00:00`, formatting each second once."""
    seconds, nanos = divmod(time.time_ns(), 1_000_000_000)
    if seconds != _SecondPrefix.second:
        _SecondPrefix.text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
        _SecondPrefix.second = seconds
    micros = nanos // 1000
    if micros:
        return f"{_SecondPrefix.text}.{micros:06d}Z"
    return _SecondPrefix.text + "Z"  # isoformat() leaves out a zero fraction
