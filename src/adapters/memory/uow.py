"""In-memory unit of work: a snapshot of every table at `__aenter__`, written back on `commit`.

Serves the embedded default (single process) and unit tests. Entities are immutable, so a shallow
copy of each table is a full snapshot; nothing is visible to other units until commit.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Any, Self

from adapters.memory.events import MemoryEventLog, MemoryEventRows
from adapters.memory.identity import (
    MemoryApiKeyRepository,
    MemorySessionRepository,
    MemoryUserRepository,
)
from adapters.memory.tasks import MemoryTaskRepository

# "trash": task id -> `TrashMark` of each task in the trash (its row stays in "tasks").
TABLES = (
    "users",
    "sessions",
    "api_keys",
    "tasks",
    "projects",
    "memberships",
    "comments",
    "webhooks",
    "deliveries",
    "webhook_attempts",
    "webhook_feed",
    "trash",
)


class MemoryDatabase:
    """The process-wide state: one dict of rows per table, keyed by id."""

    def __init__(self) -> None:
        self.tables: dict[str, dict[str, Any]] = {name: {} for name in TABLES}
        self.event_rows = MemoryEventRows()


class MemoryUnitOfWork:
    users: MemoryUserRepository
    sessions: MemorySessionRepository
    api_keys: MemoryApiKeyRepository
    tasks: MemoryTaskRepository
    events: MemoryEventLog

    def __init__(
        self, database: MemoryDatabase, on_events: Callable[[int], None] | None = None
    ) -> None:
        self._database = database
        self._on_events = on_events
        self._snapshot: dict[str, dict[str, Any]] = {}
        self._work: dict[str, dict[str, Any]] = {}

    async def __aenter__(self) -> Self:
        self._begin()
        return self

    def _bind(self) -> None:
        self.users = MemoryUserRepository(self._work["users"])
        self.sessions = MemorySessionRepository(self._work["sessions"])
        self.api_keys = MemoryApiKeyRepository(self._work["api_keys"])
        self.events = MemoryEventLog(self._database.event_rows)
        self.tasks = MemoryTaskRepository(self._work, self.events)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._snapshot = {}
        self._work = {}

    def _begin(self) -> None:
        self._snapshot = {name: dict(rows) for name, rows in self._database.tables.items()}
        self._work = {name: dict(rows) for name, rows in self._snapshot.items()}
        self._bind()

    async def commit(self) -> None:
        # Write back only what this unit changed, so two units touching different rows both stick.
        for name, rows in self._work.items():
            table, before = self._database.tables[name], self._snapshot[name]
            for row_id, row in rows.items():
                if before.get(row_id) is not row:
                    table[row_id] = row
            for row_id in before.keys() - rows.keys():
                table.pop(row_id, None)
        written = self.events.pending
        self._database.event_rows.extend(written)
        self._begin()
        if written and self._on_events is not None:
            self._on_events(len(written))

    async def rollback(self) -> None:
        self._begin()

    async def flush(self) -> None:
        """Nothing to do: every write is in the unit's working copy at once."""
