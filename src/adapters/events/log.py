"""An EventPublisher that writes each domain event as one structured log line.

While a request is being served, the logging set-up (app/logs.py) folds the event into that
request's access line (`domain_events`) instead of writing a second line. The publisher is given
that fold (`fold`) so that a folded event skips the logging call altogether: a batch publishes
one event per task.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import structlog

from domain.events import TaskEvent

log = structlog.get_logger("taskhub.events")

DOMAIN_EVENT = "domain event"

# Takes an event's fields; True when they now ride on the current request's access line.
type EventFold = Callable[[dict[str, Any]], bool]


def _never_folded(_fields: dict[str, Any]) -> bool:
    return False


class LoggingEventPublisher:
    """Publishing never raises (the change is already committed when events go out)."""

    def __init__(self, fold: EventFold = _never_folded) -> None:
        self._fold = fold

    async def publish(self, event: TaskEvent) -> None:
        with contextlib.suppress(Exception):  # a broken log sink must not fail a committed change
            fields: dict[str, Any] = {
                "name": event.name.value,
                "task_id": event.task_id,
                "owner_id": event.owner_id,
                "version": event.version,
                "occurred_at": event.occurred_at.isoformat(),
            }
            if not self._fold(fields):
                log.info(DOMAIN_EVENT, **fields)
