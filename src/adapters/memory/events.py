"""An event publisher that keeps what it is given (tests, and a harmless default)."""

from __future__ import annotations

from collections import deque

from domain.events import TaskEvent


class RecordingEventPublisher:
    """Keeps the latest `max_events` published events, oldest first."""

    def __init__(self, max_events: int = 10_000) -> None:
        self._events: deque[TaskEvent] = deque(maxlen=max_events)

    @property
    def events(self) -> list[TaskEvent]:
        return list(self._events)

    async def publish(self, event: TaskEvent) -> None:
        self._events.append(event)

    def clear(self) -> None:
        self._events.clear()
