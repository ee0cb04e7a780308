"""In-memory twins of the event ports: the recording publisher (log notices, tests), and the
event log and change feed of the embedded default (one process)."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from domain.errors import CursorExpired
from domain.events import Event, ResourceType, TaskEvent
from domain.ports.events import ActivityItem, FeedReader
from domain.ports.feed import FeedItem


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


# --- the event log twin --------------------------------------------------------------------------


class MemoryEventRows:
    """Every committed event of the process, in commit order. Positions are the decimal count
    of events committed up to and including one (never reused: purged events keep theirs)."""

    def __init__(self) -> None:
        self.rows: list[tuple[Event, dict[str, object]]] = []
        self.dropped = 0  # how many of the oldest events retention removed
        self.written = 0

    def extend(self, events: list[Event]) -> None:
        self.rows.extend((event, event.to_json()) for event in events)
        self.written += len(events)

    def seq_of(self, index: int) -> int:
        """The number (1-based position) of `rows[index]`."""
        return self.dropped + index + 1


class MemoryEventLog:
    """The `EventLog` of one memory unit of work: appended events wait in the unit and join
    the process's rows at commit (after the unit's table changes)."""

    def __init__(self, rows: MemoryEventRows) -> None:
        self._rows = rows
        self.pending: list[Event] = []

    async def append(self, *events: Event) -> None:
        self.pending.extend(events)

    def _items(self, keep: Callable[[Event], bool], after: int | None) -> list[ActivityItem]:
        return [
            ActivityItem(self._rows.seq_of(i), event.project_id, event.type.value, body)
            for i, (event, body) in enumerate(self._rows.rows)
            if keep(event) and self._rows.seq_of(i) > (after or 0)
        ]

    async def task_activity(
        self, task_id: str, after: int | None, limit: int
    ) -> list[ActivityItem]:
        return self._items(
            lambda e: e.resource_type is ResourceType.TASK and e.resource_id == task_id, after
        )[:limit]

    async def project_activity(
        self, project_id: str, after: int | None, limit: int
    ) -> list[ActivityItem]:
        return self._items(lambda e: e.project_id == project_id, after)[:limit]

    async def latest_of_task(self, task_id: str) -> ActivityItem | None:
        items = self._items(
            lambda e: e.resource_type is ResourceType.TASK and e.resource_id == task_id, None
        )
        return items[-1] if items else None


class MemoryEventFeed:
    """The change feed over the process's committed events (`EventFeed`, and the `ChangeFeed`
    of background jobs); visibility reads the memberships of `tables` as they are now."""

    def __init__(self, rows: MemoryEventRows, tables: Mapping[str, Mapping[str, Any]]) -> None:
        self._rows = rows
        self._tables = tables

    def _visible(self, reader: FeedReader | None) -> Callable[[Event], bool]:
        if reader is None:
            return lambda _event: True
        readable = {
            m.project_id
            for m in self._tables["memberships"].values()
            if m.user_id == reader.user_id and m.role in reader.roles
        }
        if reader.only is not None:
            readable &= set(reader.only)

        def visible(event: Event) -> bool:
            if event.project_id in readable:
                return True
            allowed = reader.only is None or event.project_id in reader.only
            return reader.user_id in event.audience and allowed

        return visible

    async def read_after(
        self, position: str | None, limit: int, reader: FeedReader | None = None
    ) -> tuple[list[FeedItem], str]:
        rows = self._rows
        if position is None:
            start = rows.dropped
        else:
            if not position.isdigit() or len(position) > 19:
                raise ValueError("not a feed position")
            start = int(position)
            if start < rows.dropped:
                raise CursorExpired("this cursor is older than the oldest event kept; start again")
        visible = self._visible(reader)
        items: list[FeedItem] = []
        scanned = start
        for index in range(start - rows.dropped, len(rows.rows)):
            event, body = rows.rows[index]
            scanned = rows.seq_of(index)
            if visible(event):
                items.append(
                    FeedItem(
                        str(scanned),
                        event.id,
                        event.type.value,
                        event.project_id,
                        event.occurred_at,
                        body,
                    )
                )
                if len(items) == limit:
                    break
        return items, str(max(scanned, start))

    async def now(self) -> str:
        return str(self._rows.dropped + len(self._rows.rows))

    async def purge_before(self, cutoff: datetime, limit: int) -> int:
        rows = self._rows
        gone = 0
        while rows.rows and gone < limit and rows.rows[0][0].occurred_at < cutoff:
            rows.rows.pop(0)
            rows.dropped += 1
            gone += 1
        return gone


class MemoryFeedSignal:
    """The `FeedSignal` of one process: a generation counter and an asyncio event per
    generation (every waiter of a generation wakes at its end)."""

    def __init__(self) -> None:
        self._generation = 0
        self._woken: asyncio.Event | None = None

    def notify(self) -> None:
        self._generation += 1
        woken, self._woken = self._woken, None
        if woken is not None:
            woken.set()

    def ticket(self) -> object:
        return self._generation

    async def wait(self, ticket: object, within: float) -> bool:
        if ticket != self._generation:
            return True
        if self._woken is None:
            self._woken = asyncio.Event()
        woken = self._woken
        try:
            async with asyncio.timeout(within):
                await woken.wait()
        except TimeoutError:
            return False
        return True

    async def close(self) -> None:
        self.notify()  # wake every waiter, so streams see the shutdown at once
