"""Ports of the event log: recording events with a change, and reading them back.

`EventLog` lives on the unit of work: `append` records events in the transaction of the change
(a store may hold them and write them all in one statement just before the commit), and the
activity reads run in the same unit as the access check. `EventFeed` is the change feed a caller
walks (`GET /v1/changes` and its stream): `read_after` in commit order, narrowed to what a
reader may see. The unnarrowed walk is `domain.ports.feed.ChangeFeed` (background jobs).
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from domain.events import Event
from domain.ports.feed import FeedItem
from domain.projects import Role


@dataclass(frozen=True, slots=True)
class ActivityItem:
    """One event of a resource's or a project's activity; `seq` orders them (oldest first)."""

    seq: int
    project_id: str | None
    type: str
    body: Mapping[str, object]


@dataclass(frozen=True, slots=True)
class FeedReader:
    """Whose feed: events of the projects where `user_id` holds one of `roles` now (only those
    in `only` for a restricted key), and events naming `user_id` in their audience."""

    user_id: str
    roles: frozenset[Role]
    only: Set[str] | None = None


class EventLog(Protocol):
    async def append(self, *events: Event) -> None:
        """Record `events` in this unit's transaction, in this order."""
        ...

    async def task_activity(
        self, task_id: str, after: int | None, limit: int
    ) -> list[ActivityItem]:
        """Up to `limit` events of the task, oldest first, after the one numbered `after`."""
        ...

    async def project_activity(
        self, project_id: str, after: int | None, limit: int
    ) -> list[ActivityItem]:
        """Up to `limit` events of the project (any resource in it), oldest first."""
        ...

    async def latest_of_task(self, task_id: str) -> ActivityItem | None:
        """The task's newest event (where it was last seen, and whether it is gone)."""
        ...


class EventFeed(Protocol):
    """The change feed over the stored events. Positions are opaque strings of one store; a
    string that is not one of its positions is `ValueError`, one older than what is kept is
    `domain.errors.CursorExpired`."""

    async def read_after(
        self, position: str | None, limit: int, reader: FeedReader | None = None
    ) -> tuple[list[FeedItem], str]:
        """Up to `limit` events committed after `position` (None: the oldest kept), in commit
        order, never passing over one that commits later with an earlier number; only the
        `reader`'s (None: every event). And the position to pass next (never None)."""
        ...

    async def now(self) -> str:
        """The position after every event committed so far."""
        ...

    async def purge_before(self, cutoff: datetime, limit: int) -> int:
        """Delete up to `limit` events that occurred before `cutoff`, oldest first; how many."""
        ...


class FeedSignal(Protocol):
    """Wake-ups for change streams: `notify` after a commit that wrote events (on any replica
    where the signal reaches); a stream takes a `ticket` before it reads the feed and `wait`s
    on it when the read found nothing, so a notification in between is never lost."""

    def notify(self) -> None: ...

    def ticket(self) -> object: ...

    async def wait(self, ticket: object, within: float) -> bool:
        """True when notified since `ticket` (at once if already), False after `within` seconds."""
        ...

    async def close(self) -> None: ...
