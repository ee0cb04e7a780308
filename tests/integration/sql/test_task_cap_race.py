"""The per-owner task cap under concurrent writes on PostgreSQL, where transactions really run at
once: creates racing at the cap never take an owner past it, and the count stays exact."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.memory.events import RecordingEventPublisher
from adapters.sql.tables import tasks
from adapters.sql.uow import SqlUnitOfWork
from domain.ports.tasks import TaskUnitOfWork
from domain.tasks import TaskDraft, TaskLimitReached
from domain.use_cases.tasks import CreateTask, DeleteTrashedTask
from tests.integration.sql.conftest import EngineMaker, UowFactory, add_user, inbox_id
from tests.integration.sql.test_task_cap import counts
from tests.unit.projects.support import Who
from tests.unit.tasks.cap_contract import fresh_task
from tests.unit.tasks.fakes import T0, FakeClock

POSTGRESQL_ONLY = True


class UuidIds:
    def new_id(self) -> str:
        return str(uuid.uuid4())


def _units(engine: AsyncEngine, *, raw: bool) -> Callable[[], TaskUnitOfWork]:
    return lambda: SqlUnitOfWork(engine, raw=raw)


def _create(engine: AsyncEngine, max_tasks: int, *, raw: bool = True) -> CreateTask:
    events = RecordingEventPublisher()
    return CreateTask(_units(engine, raw=raw), FakeClock(), UuidIds(), events, max_tasks=max_tasks)


async def _fill(new_uow: UowFactory, owner_id: str, count: int) -> list[str]:
    made = [fresh_task(owner_id, inbox_id(owner_id)) for _ in range(count)]
    for task in made:
        async with new_uow() as uow:
            await uow.tasks.add(task, limit=count)
            await uow.commit()
    return [task.id for task in made]


@pytest.mark.parametrize("first_commits", [True, False], ids=["commit", "rollback"])
async def test_a_create_at_the_cap_waits_for_the_one_in_flight_and_then_counts_it(
    make_engine: EngineMaker, engine: AsyncEngine, new_uow: UowFactory, first_commits: bool
) -> None:
    """One place left: a create in flight holds the owner's counter row; a second create (the
    raw mode, as served) waits for it, then is refused if it committed, stored if it did not."""
    racing = make_engine(pool_size=2, max_overflow=0)
    owner = await add_user(new_uow)
    await _fill(new_uow, owner.id, 1)
    create = _create(racing, 2)

    async with new_uow() as first:  # the SQLAlchemy mode sends the counted INSERT at once
        await first.tasks.add(fresh_task(owner.id, inbox_id(owner.id)), limit=2)
        second = asyncio.create_task(create.execute(Who(owner.id), TaskDraft(title="second")))
        await asyncio.sleep(0.3)  # let it reach the counter row and wait there
        assert not second.done()
        if first_commits:
            await first.commit()
    if first_commits:
        with pytest.raises(TaskLimitReached):
            await asyncio.wait_for(second, 10)
    else:
        await asyncio.wait_for(second, 10)
    assert await counts(engine, owner.id) == (2, 2)


async def test_a_burst_of_creates_at_the_cap_stores_exactly_the_places_left(
    make_engine: EngineMaker, engine: AsyncEngine, new_uow: UowFactory
) -> None:
    racing = make_engine(pool_size=12, max_overflow=0)
    owner = await add_user(new_uow)
    await _fill(new_uow, owner.id, 3)
    cap = 5
    # Both ways the SQL unit of work runs a create, interleaved.
    creates = [_create(racing, cap, raw=n % 2 == 0) for n in range(24)]
    outcomes = await asyncio.gather(
        *(
            create.execute(Who(owner.id), TaskDraft(title=f"burst {n}"))
            for n, create in enumerate(creates)
        ),
        return_exceptions=True,
    )
    refused = [o for o in outcomes if isinstance(o, TaskLimitReached)]
    stored = [o for o in outcomes if not isinstance(o, BaseException)]
    assert (len(stored), len(refused)) == (2, 22), [o for o in outcomes if o not in stored]
    assert await counts(engine, owner.id) == (cap, cap)


async def test_concurrent_creates_and_deletes_keep_the_count_exact(
    make_engine: EngineMaker, engine: AsyncEngine, new_uow: UowFactory
) -> None:
    racing = make_engine(pool_size=12, max_overflow=0)
    owner = await add_user(new_uow)
    cap = 6
    existing = await _fill(new_uow, owner.id, cap)
    # In the trash they still count; deleted for good (racing the creates) they free places.
    for task_id in existing[:4]:
        async with new_uow() as uow:
            assert await uow.tasks.trash(task_id, 1, T0)
            await uow.commit()
    delete = DeleteTrashedTask(
        _units(racing, raw=True), FakeClock(), RecordingEventPublisher(), ids=UuidIds()
    )
    creates = [_create(racing, cap, raw=n % 2 == 0) for n in range(12)]
    work: list[Coroutine[Any, Any, object]] = [
        delete.execute(Who(owner.id), task_id) for task_id in existing[:4]
    ]
    work += [
        create.execute(Who(owner.id), TaskDraft(title=f"t{n}")) for n, create in enumerate(creates)
    ]
    outcomes = await asyncio.gather(*work, return_exceptions=True)
    unexpected = [
        o for o in outcomes if isinstance(o, BaseException) and not isinstance(o, TaskLimitReached)
    ]
    assert unexpected == []
    stored = sum(1 for o in outcomes[4:] if not isinstance(o, BaseException))
    n, held = await counts(engine, owner.id)
    assert n == held == cap - 4 + stored
    assert held <= cap


async def test_concurrent_purges_take_each_trashed_task_once_and_keep_the_count_exact(
    make_engine: EngineMaker, engine: AsyncEngine, new_uow: UowFactory
) -> None:
    """Four purges at once (no lease between them), small batches over trees: SKIP LOCKED
    hands each task to one batch only, parents wait for their subtasks, nothing errors."""
    racing = make_engine(pool_size=4, max_overflow=0)
    owner = await add_user(new_uow)
    project = inbox_id(owner.id)
    roots = [fresh_task(owner.id, project) for _ in range(30)]
    children = [
        replace(fresh_task(owner.id, project), parent_id=root.id)
        for root in roots
        for _ in range(3)
    ]
    for task in (*roots, *children):
        async with new_uow() as uow:
            await uow.tasks.add(task, limit=1000)
            await uow.commit()
    for root in roots:
        async with new_uow() as uow:
            assert await uow.tasks.trash(root.id, 1, T0)
            await uow.commit()
    assert await counts(engine, owner.id) == (120, 120)
    async with engine.connect() as conn:  # what other tests left expired in the trash goes too
        others = await conn.scalar(
            select(func.count())
            .select_from(tasks)
            .where(tasks.c.deleted_at < T0 + timedelta(seconds=1), tasks.c.owner_id != owner.id)
        )

    async def purge_until_empty() -> int:
        done = 0
        while True:
            async with SqlUnitOfWork(racing, raw=True) as uow:
                went = await uow.tasks.purge_trash(T0 + timedelta(seconds=1), 5)
                await uow.commit()
            if not went:
                return done
            done += len(went)

    shares = await asyncio.gather(*(purge_until_empty() for _ in range(4)))
    assert sum(shares) == 120 + int(others or 0)
    assert await counts(engine, owner.id) == (0, 0)
