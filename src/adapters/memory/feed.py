"""An in-memory change feed: events appended in commit order (one process, one writer)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from domain.ports.feed import FeedItem


class MemoryChangeFeed:
    """Positions are the decimal count of events appended before and including the item."""

    def __init__(self) -> None:
        self._items: list[FeedItem] = []

    def append(
        self,
        *,
        event_id: str,
        type: str,
        project_id: str | None,
        occurred_at: datetime,
        body: Mapping[str, object],
    ) -> FeedItem:
        item = FeedItem(str(len(self._items) + 1), event_id, type, project_id, occurred_at, body)
        self._items.append(item)
        return item

    async def read_after(self, position: str | None, limit: int) -> tuple[list[FeedItem], str]:
        start = int(position) if position else 0
        items = self._items[start : start + limit]
        return items, (items[-1].position if items else str(start))

    async def now(self) -> str:
        return str(len(self._items))
