"""structlog set-up: JSON lines in production, a readable console in development.

One configuration for the whole process, done once at start; request context (request id,
principal) comes from the request's log context (adapters/http/logcontext.py), set by the HTTP
middleware. A domain event published while serving a request is not a line of its own: it rides
on that request's access line (`domain_events`), so a request writes one line. Outside a request
(CLI, background work) it is a line of its own. Bodies are never logged.
"""

from __future__ import annotations

import logging
import re
import sys
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
            escape_control_characters,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ]
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.WriteLoggerFactory(file=_CurrentStderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=True,
    )
    if level > logging.INFO:
        use_access_line_writer(_no_access_line)
    elif settings.log_format == "json":
        use_access_line_writer(JsonAccessLine(_CurrentStderr()))
    else:
        use_access_line_writer(structlog_access_line)
    # Libraries that use the standard logging module (uvicorn, alembic, sqlalchemy) go to stderr
    # at the same level, without their own access log (the middleware writes one line a request).
    logging.basicConfig(
        level=level, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("uvicorn.access").disabled = True
    # The MCP SDK's stateless transport logs "Terminating session" at INFO on every request, as
    # plain text even in JSON mode: the access line already records the request. Shown at DEBUG.
    logging.getLogger("mcp.server.streamable_http").setLevel(
        level if level < logging.INFO else max(level, logging.WARNING)
    )


class _CurrentStderr:
    """Whatever sys.stderr is at write time (test runners and daemons swap it)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


# structlog's add_log_level: `warn` is an alias of warning, `exception` logs at error.
_LEVEL_OF_METHOD = {"warn": "warning", "exception": "error"}


def fold_into_request(fields: dict[str, Any]) -> bool:
    """Inside a request whose access line is not yet written, keep a domain event's fields for
    that line (True); outside one, False: the event is a line of its own."""
    context = REQUEST_LOG.get()
    if context is not None and context.open:
        context.add_event(fields)
        return True
    return False


def fold_domain_event(_logger: WrappedLogger, _name: str, event_dict: EventDict) -> EventDict:
    """A `domain event` line logged inside a request rides on its access line instead."""
    if event_dict.get("event") == DOMAIN_EVENT and fold_into_request(
        {k: v for k, v in event_dict.items() if k != "event"}
    ):
        raise structlog.DropEvent
    return event_dict


# C0 controls, DEL and C1 controls, written as escapes: a request path or header value can hold
# terminal escape sequences or line breaks, which a console must not act on (JSON escapes them).
_CONTROL_ESCAPES = {c: f"\\x{c:02x}" for c in (*range(0x20), *range(0x7F, 0xA0))} | {
    0x09: "\\t",
    0x0A: "\\n",
    0x0D: "\\r",
}
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
_RENDERED_AS_TRACEBACK = frozenset({"exc_info", "exception", "stack"})


def escape_control_characters(
    _logger: WrappedLogger, _name: str, event_dict: EventDict
) -> EventDict:
    """Console logs: every text value with control characters escaped (`\x1b`, `\n`, ...)."""
    for key, value in event_dict.items():
        if isinstance(value, str) and key not in _RENDERED_AS_TRACEBACK and _CONTROL.search(value):
            event_dict[key] = value.translate(_CONTROL_ESCAPES)
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

    def __init__(self, out: _CurrentStderr) -> None:
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
