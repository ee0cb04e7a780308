"""Clean-up use cases the worker runs as job steps: each deletes one bounded batch in one short
transaction and says how many rows went (0: nothing is left to do)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from domain.events import EventMaker, EventType
from domain.ports import Clock, IdGenerator
from domain.ports.events import EventFeed
from domain.ports.identity import IdentityUnitOfWork
from domain.ports.tasks import TaskUnitOfWorkFactory


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


class PurgeExpiredTrash:
    """Tasks in the trash for more than `retention` go for good, `batch_size` at a time (a tree
    leaves first), each freeing its place under its creator's cap and recording its
    `task.purged` event (by the worker) in the same transaction. Several workers may run it at
    once: each batch takes only tasks no other batch holds."""

    def __init__(
        self,
        uow_factory: TaskUnitOfWorkFactory,
        clock: Clock,
        ids: IdGenerator,
        *,
        retention: timedelta,
        batch_size: int,
    ) -> None:
        if batch_size < 1 or retention < timedelta(0):
            raise ValueError("a purge needs batch_size >= 1 and a retention >= 0")
        self._uow_factory = uow_factory
        self._clock = clock
        self._ids = ids
        self._retention = retention
        self._batch_size = batch_size

    async def step(self) -> int:
        now = self._clock.now()
        make = EventMaker(self._ids.new_id, None, now)
        async with self._uow_factory() as uow:
            purged = await uow.tasks.purge_trash(now - self._retention, self._batch_size)
            await uow.events.append(*(make.task(EventType.TASK_PURGED, gone) for gone in purged))
            await uow.commit()
        return len(purged)


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
