"""The change feed as background jobs read it: every committed event of every project, in
commit order. The webhook fan-out walks it; the HTTP feed (`GET /v1/changes`) is the same walk
narrowed to what a caller may read."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True, slots=True)
class FeedItem:
    """One committed event. `position` is the opaque feed position just after it; `body` is the
    event as the API shows it (JSON-ready: strings, numbers, booleans, None, lists, dicts)."""

    position: str
    event_id: str
    type: str
    project_id: str | None
    occurred_at: datetime
    body: Mapping[str, object]


class ChangeFeed(Protocol):
    async def read_after(self, position: str | None, limit: int) -> tuple[list[FeedItem], str]:
        """Up to `limit` events committed after `position` (None: from the oldest kept event),
        in commit order, never passing over an event that committed later with an earlier id,
        and the position to pass next time (never None, also when nothing came)."""
        ...

    async def now(self) -> str:
        """A position after every event committed so far (a read after it may still return a
        few that committed just before, never one that commits later)."""
        ...
