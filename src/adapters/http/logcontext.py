"""The request's log context: what every log line written while serving a request carries.

One ContextVar holds one small object per request (set by the request middleware, filled by the
auth guard), rather than structlog's contextvars, which cost a ContextVar per key and a scan of
the whole context on every bind, clear and log call. The logging set-up (app/logs.py) merges
`fields` into each line and folds domain events into `events`, which the access line carries.

The access line itself goes through `write_access_line`: by default the `taskhub.access` structlog
logger, which the logging set-up replaces with a writer that renders the same line without
structlog's generic machinery (it runs on every request).

Importing this module has no side effects (no metrics): the logging set-up imports it early.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

import structlog


class RequestLog:
    """The log context of one request; `open` until its access line is written."""

    __slots__ = ("events", "fields", "open")

    def __init__(self, request_id: str) -> None:
        self.fields: dict[str, Any] = {"request_id": request_id}
        self.events: list[dict[str, Any]] | None = None
        self.open = True

    def add_event(self, event: dict[str, Any]) -> None:
        if self.events is None:
            self.events = [event]
        else:
            self.events.append(event)


REQUEST_LOG: ContextVar[RequestLog | None] = ContextVar("taskhub_request_log", default=None)


def bind_request_log(**fields: Any) -> None:
    """Add fields to every further log line of the current request (no-op outside one)."""
    context = REQUEST_LOG.get()
    if context is not None:
        context.fields.update(fields)


# (context, method, route, path, status, duration_ms, client) -> None
AccessLineWriter = Callable[[RequestLog, str, str, str, int, float, str], None]

_access_log = structlog.get_logger("taskhub.access")


def structlog_access_line(
    context: RequestLog,
    method: str,
    route: str,
    path: str,
    status: int,
    duration_ms: float,
    client: str,
) -> None:
    """The access line as a `taskhub.access` structlog call: the reference for other writers."""
    extra = {"domain_events": context.events} if context.events else {}
    _access_log.info(
        "request",
        method=method,
        route=route,
        path=path,
        status=status,
        duration_ms=duration_ms,
        client=client,
        principal=context.fields.get("principal"),
        **extra,
    )


write_access_line: AccessLineWriter = structlog_access_line


def use_access_line_writer(writer: AccessLineWriter) -> None:
    """Write every further access line with `writer` (the logging set-up calls this)."""
    global write_access_line  # one process-wide writer, chosen at start
    write_access_line = writer
