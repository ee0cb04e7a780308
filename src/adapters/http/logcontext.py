"""The request's log context: what every log line written while serving a request carries.

One ContextVar holds one small object per request (set by the request middleware, filled by the
auth guard), rather than structlog's contextvars, which cost a ContextVar per key and a scan of
the whole context on every bind, clear and log call. The logging set-up (app/logs.py) merges
`fields` into each line and folds domain events into `events`, which the access line carries.

Importing this module has no side effects (no metrics): the logging set-up imports it early.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any


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


def current_request_log() -> RequestLog | None:
    return REQUEST_LOG.get()


def bind_request_log(**fields: Any) -> None:
    """Add fields to every further log line of the current request (no-op outside one)."""
    context = REQUEST_LOG.get()
    if context is not None:
        context.fields.update(fields)
