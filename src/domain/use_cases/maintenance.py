"""Clean-up use cases the worker runs as job steps: each deletes one bounded batch in one short
transaction and says how many rows went (0: nothing is left to do)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from domain.ports import Clock
from domain.ports.events import EventFeed
from domain.ports.identity import IdentityUnitOfWork


class PurgeExpiredSessions:
    """Sessions that expired or were revoked more than `retention` ago are of no use to anyone
    (their tokens are refused either way): delete them, `batch_size` at a time."""

    def __init__(
        self,
        uow_factory: Callable[[], IdentityUnitOfWork],
        clock: Clock,
        *,
        retention: timedelta,
        batch_size: int,
    ) -> None:
        if batch_size < 1 or retention < timedelta(0):
            raise ValueError("a purge needs batch_size >= 1 and a retention >= 0")
        self._uow_factory = uow_factory
        self._clock = clock
        self._retention = retention
        self._batch_size = batch_size

    async def step(self) -> int:
        before = self._clock.now() - self._retention
        async with self._uow_factory() as uow:
            purged = await uow.sessions.purge_expired(before, self._batch_size)
            await uow.commit()
        return purged


class PurgeOldEvents:
    """Events older than `retention` leave the activity lists and the change feed (a cursor
    from before them is then expired): delete them, oldest first, `batch_size` at a time."""

    def __init__(
        self, feed: EventFeed, clock: Clock, *, retention: timedelta, batch_size: int
    ) -> None:
        if batch_size < 1 or retention <= timedelta(0):
            raise ValueError("a purge needs batch_size >= 1 and a retention > 0")
        self._feed = feed
        self._clock = clock
        self._retention = retention
        self._batch_size = batch_size

    async def step(self) -> int:
        return await self._feed.purge_before(self._clock.now() - self._retention, self._batch_size)
