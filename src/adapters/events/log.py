"""An EventPublisher that writes each domain event as one structured log line.

While a request is being served, the logging set-up (app/logs.py) folds the event into that
request's access line (`domain_events`) instead of writing a second line.
"""

from __future__ import annotations

import contextlib

import structlog

from domain.events import TaskEvent

log = structlog.get_logger("taskhub.events")

DOMAIN_EVENT = "domain event"


class LoggingEventPublisher:
    """Publishing never raises (the change is already committed when events go out)."""

    async def publish(self, event: TaskEvent) -> None:
        with contextlib.suppress(Exception):  # a broken log sink must not fail a committed change
            log.info(
                DOMAIN_EVENT,
                name=event.name.value,
                task_id=event.task_id,
                owner_id=event.owner_id,
                version=event.version,
                occurred_at=event.occurred_at.isoformat(),
            )
