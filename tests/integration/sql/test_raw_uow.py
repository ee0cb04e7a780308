"""The SQL unit of work's raw-connection mode on PostgreSQL: what leaving without a commit
undoes, outages, the pool.

The repository itself (every filter, sort and keyset rule) is covered by test_tasks.py and
test_pages_differential.py, which run against this mode too.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.sql.engine import create_engine
from adapters.sql.uow import ConnectionSlots, SqlUnitOfWork
from domain.errors import Conflict, Unavailable
from domain.task_queries import TaskQuery
from domain.tasks import Task
from tests.integration.sql.conftest import EngineMaker, UowFactory, add_user, reach, reader
from tests.integration.sql.test_tasks import make_task

POSTGRESQL_ONLY = True  # conftest drops this module's SQLite runs
# Through PgBouncer the server process id is PgBouncer's own (nothing to terminate) and the
# statement timeout is the database role's, not a startup parameter: these run direct only.
DIRECT_ONLY = {
    "test_a_terminated_backend_is_unavailable_then_the_next_unit_works",
    "test_a_backend_terminated_inside_a_transaction_is_discarded",
    "test_a_statement_timeout_is_unavailable_and_keeps_the_connection",
    "test_the_pool_and_the_slots_are_whole_after_many_units",
    "test_a_lost_connection_recycles_the_pooled_ones_as_old_as_it",
}


async def _stored(engine: AsyncEngine, task: Task) -> Task | None:
    async with _raw(engine) as uow:
        return await reach(uow, task.owner_id, task.id)


async def _committed(engine: AsyncEngine, task: Task) -> Task:
    async with _raw(engine) as uow:
        await uow.tasks.add(task)
        await uow.commit()
    return task


async def _terminate(admin: AsyncEngine, pid: int) -> None:
    """End a backend from outside (on another engine, so a full pool cannot block it)."""
    async with admin.connect() as conn:
        await conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        await conn.commit()


def _raw(engine: AsyncEngine, **options: Any) -> SqlUnitOfWork:
    return SqlUnitOfWork(engine, raw=True, **options)


def _driver(uow: SqlUnitOfWork) -> Any:
    """The asyncpg connection a raw-mode unit holds."""
    return uow._link.runner._conn  # type: ignore[union-attr]


def _pid(uow: SqlUnitOfWork) -> int:
    pid: int = _driver(uow).get_server_pid()
    return pid


def _pool_is_whole(engine: AsyncEngine, opened: int) -> None:
    """Nothing checked out, and the `opened` connections (or records of invalidated ones, which
    reconnect on their next checkout) back in the pool."""
    pool: Any = engine.sync_engine.pool
    assert pool.checkedout() == 0
    assert pool.checkedin() == opened


# --- leaving without commit ----------------------------------------------------------------------


async def test_a_buffered_add_is_read_back_inside_and_dropped_without_commit(
    engine: AsyncEngine, new_uow: UowFactory
) -> None:
    owner = await add_user(new_uow)
    task = make_task(owner.id)
    async with _raw(engine) as uow:
        await uow.tasks.add(task)
        assert await reach(uow, owner.id, task.id) == task  # reads its own writes
    assert await _stored(engine, task) is None


async def test_an_update_or_delete_without_commit_changes_nothing(
    engine: AsyncEngine, new_uow: UowFactory
) -> None:
    owner = await add_user(new_uow)
    task = await _committed(engine, make_task(owner.id))
    changed = replace(task, title="changed", version=2)
    async with _raw(engine) as uow:
        assert await uow.tasks.update(changed, expected_version=1) is True
        assert await reach(uow, owner.id, task.id) == changed
    assert await _stored(engine, task) == task
    async with _raw(engine) as uow:
        assert await uow.tasks.delete(owner.id, task.id, expected_version=1) is True
        await uow.tasks.add(make_task(owner.id))
    assert await _stored(engine, task) == task


async def test_rollback_forgets_adds_and_writes_and_the_unit_goes_on(
    engine: AsyncEngine, new_uow: UowFactory
) -> None:
    owner = await add_user(new_uow)
    task = await _committed(engine, make_task(owner.id))
    dropped, kept = make_task(owner.id), make_task(owner.id)
    async with _raw(engine) as uow:
        await uow.tasks.add(dropped)
        assert await uow.tasks.update(replace(task, title="x", version=2), 1) is True
        await uow.rollback()
        await uow.tasks.add(kept)
        await uow.commit()
    assert await _stored(engine, dropped) is None
    assert await _stored(engine, task) == task
    assert await _stored(engine, kept) == kept


async def test_adds_with_an_update_commit_together(
    engine: AsyncEngine, new_uow: UowFactory
) -> None:
    owner = await add_user(new_uow)
    task = await _committed(engine, make_task(owner.id))
    first, second = make_task(owner.id), make_task(owner.id)
    changed = replace(task, priority=4, version=2)
    async with _raw(engine) as uow:
        await uow.tasks.add(first)
        assert await uow.tasks.update(changed, expected_version=1) is True
        await uow.tasks.add(second)
        await uow.commit()
        # After a commit the unit goes on: a later write is a transaction of its own.
        assert await uow.tasks.delete(owner.id, first.id, expected_version=1) is True
    assert await _stored(engine, task) == changed
    assert await _stored(engine, first) == first
    assert await _stored(engine, second) == second


async def test_a_failing_insert_leaves_nothing_and_the_connection_usable(
    make_engine: EngineMaker, new_uow: UowFactory
) -> None:
    engine = make_engine(pool_size=1, max_overflow=0)
    owner = await add_user(new_uow)
    existing = await _committed(engine, make_task(owner.id))
    fresh = make_task(owner.id)

    async def insert(batch: list[Task]) -> None:
        async with _raw(engine) as uow:
            for task in batch:
                await uow.tasks.add(task)
            await uow.commit()

    for batch in ([existing], [fresh, existing]):  # alone, and inside a transaction
        with pytest.raises(Conflict) as raised:  # the driver's duplicate key, as a Conflict
            await insert(batch)
        assert "duplicate key" in str(raised.value.__cause__)
    assert await _stored(engine, fresh) is None
    _pool_is_whole(engine, 1)


# --- outages and the pool ------------------------------------------------------------------------


async def test_a_terminated_backend_is_unavailable_then_the_next_unit_works(
    make_engine: EngineMaker, engine: AsyncEngine, new_uow: UowFactory
) -> None:
    admin, engine = engine, make_engine(pool_size=2, max_overflow=0)
    owner = await add_user(new_uow)
    task = await _committed(engine, make_task(owner.id))

    async def terminated_before(action: str) -> None:
        async with _raw(engine) as uow:
            await _terminate(admin, _pid(uow))
            if action == "get":
                await reach(uow, owner.id, task.id)
            elif action == "update":
                await uow.tasks.update(replace(task, version=2), 1)
            else:
                await uow.tasks.add(make_task(owner.id))
                await uow.commit()

    for action in ("get", "update", "commit"):
        with pytest.raises(Unavailable):
            await terminated_before(action)
        _pool_is_whole(engine, 1)
        assert await _stored(engine, task) == task  # the next unit works


async def test_a_backend_terminated_inside_a_transaction_is_discarded(
    make_engine: EngineMaker, engine: AsyncEngine, new_uow: UowFactory
) -> None:
    admin, engine = engine, make_engine(pool_size=1, max_overflow=0)
    owner = await add_user(new_uow)
    task = await _committed(engine, make_task(owner.id))

    async def terminated_in_transaction() -> None:
        async with _raw(engine) as uow:
            assert await uow.tasks.update(replace(task, title="lost", version=2), 1) is True
            await _terminate(admin, _pid(uow))
            await uow.commit()

    with pytest.raises(Unavailable):
        await terminated_in_transaction()
    _pool_is_whole(engine, 1)
    assert await _stored(engine, task) == task


async def test_a_statement_timeout_is_unavailable_and_keeps_the_connection(
    make_engine: EngineMaker, engine: AsyncEngine, new_uow: UowFactory
) -> None:
    timed = make_engine(pool_size=1, max_overflow=0, statement_timeout_ms=300)
    owner = await add_user(new_uow)
    task = await _committed(timed, make_task(owner.id))
    pids: list[int] = []

    async def blocked_update() -> None:
        async with _raw(timed) as uow:
            pids.append(_pid(uow))
            await uow.tasks.update(replace(task, version=2), 1)

    async with engine.connect() as blocker:
        await blocker.execute(
            text("SELECT 1 FROM tasks WHERE id = :id FOR UPDATE"), {"id": task.id}
        )
        with pytest.raises(Unavailable) as raised:
            await blocked_update()
        assert type(raised.value.__cause__).__name__ == "QueryCanceledError"
        await blocker.rollback()
    async with _raw(timed) as uow:
        assert _pid(uow) == pids[0]  # the same connection, back in the pool and idle
        assert await reach(uow, owner.id, task.id) == task


async def test_a_unit_cancelled_mid_statement_does_not_return_its_connection(
    make_engine: EngineMaker, engine: AsyncEngine, new_uow: UowFactory
) -> None:
    pooled = make_engine(pool_size=1, max_overflow=0)
    owner = await add_user(new_uow)
    task = await _committed(pooled, make_task(owner.id))
    started = asyncio.Event()
    pids: list[int] = []

    async def blocked_update() -> None:
        async with _raw(pooled) as uow:
            pids.append(_pid(uow))
            started.set()
            await uow.tasks.update(replace(task, version=2), 1)

    async with engine.connect() as blocker:
        await blocker.execute(
            text("SELECT 1 FROM tasks WHERE id = :id FOR UPDATE"), {"id": task.id}
        )
        running = asyncio.create_task(blocked_update())
        await started.wait()
        await asyncio.sleep(0.2)
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running
        await blocker.rollback()
    _pool_is_whole(pooled, 1)
    async with _raw(pooled) as uow:
        assert _pid(uow) != pids[0]  # a new connection, not the interrupted one
        assert await reach(uow, owner.id, task.id) == task


async def test_an_unreachable_database_is_unavailable_and_frees_the_slot() -> None:
    engine = create_engine(
        "postgresql+asyncpg://postgres@127.0.0.1:9/none", connect_timeout=1.0, pool_size=1
    )
    slots = ConnectionSlots(1, 1.0)
    try:
        for _ in range(2):  # a leaked slot would make the second wait, then say "busy"
            with pytest.raises(Unavailable, match="unavailable"):
                async with _raw(engine, slots=slots):
                    pass
    finally:
        await engine.dispose()


async def test_the_pool_and_the_slots_are_whole_after_many_units(
    make_engine: EngineMaker, engine: AsyncEngine, new_uow: UowFactory
) -> None:
    admin, engine = engine, make_engine(pool_size=3, max_overflow=0)
    slots = ConnectionSlots(3, 2.0)
    owner = await add_user(new_uow)
    task = await _committed(engine, make_task(owner.id))

    async def one(index: int) -> None:
        async with _raw(engine, slots=slots) as uow:
            match index % 5:
                case 0:
                    await reach(uow, owner.id, task.id)
                case 1:
                    await uow.tasks.add(task)  # duplicate id: fails at commit
                    await uow.commit()
                case 2:
                    await uow.tasks.update(replace(task, version=2), 1)  # rolled back
                case 3:
                    await _terminate(admin, _pid(uow))
                    await reach(uow, owner.id, task.id)
                case _:
                    raise LookupError("the caller's own error")

    results = await asyncio.gather(*(one(i) for i in range(40)), return_exceptions=True)
    assert sum(isinstance(r, Unavailable) for r in results) == 8
    assert sum(isinstance(r, LookupError) for r in results) == 8
    _pool_is_whole(engine, 3)
    for _ in range(3):  # every slot is free again: no wait
        await asyncio.wait_for(slots.acquire(), 0.5)
    assert await _stored(engine, task) == task


async def test_pgbouncer_mode_works_without_the_statement_cache(
    make_engine: EngineMaker, new_uow: UowFactory
) -> None:
    engine = make_engine(pool_size=1, max_overflow=0, pgbouncer=True)
    owner = await add_user(new_uow)
    for _ in range(3):  # the same statements again, on the same connection
        task = await _committed(engine, make_task(owner.id))
        async with _raw(engine) as uow:
            assert _driver(uow)._stmt_cache.get_max_size() == 0
            assert await reach(uow, owner.id, task.id) == task
            assert await uow.tasks.update(replace(task, version=2), 1) is True
            assert await uow.tasks.delete(owner.id, task.id, 2) is True
            await uow.commit()
        assert await _stored(engine, task) is None


async def test_overflow_connections_are_closed_on_return(
    make_engine: EngineMaker, new_uow: UowFactory
) -> None:
    engine = make_engine(pool_size=1, max_overflow=2)
    owner = await add_user(new_uow)
    task = await _committed(engine, make_task(owner.id))
    inside = asyncio.Barrier(3)

    async def read() -> Task | None:
        async with _raw(engine) as uow:
            await inside.wait()  # three connections out at once: two are overflow
            return await reach(uow, owner.id, task.id)

    assert list(await asyncio.gather(read(), read(), read())) == [task, task, task]
    _pool_is_whole(engine, 1)
    assert engine.sync_engine.pool.overflow() == 0  # type: ignore[attr-defined]  # none left


async def test_a_read_write_unit_reads_inside_its_transaction(
    engine: AsyncEngine, new_uow: UowFactory
) -> None:
    """One transaction per use case: an update's read and write are one transaction, so a
    change committed by someone else in between cannot slip under the read."""
    owner = await add_user(new_uow)
    task = await _committed(engine, make_task(owner.id))
    async with _raw(engine) as uow:
        assert await reach(uow, owner.id, task.id) == task
        in_transaction = await _driver(uow).fetchval("SELECT txid_current_if_assigned()")
        began = await _driver(uow).fetchval("SELECT now() = statement_timestamp()")
        assert _driver(uow).is_in_transaction()
        assert in_transaction is None  # nothing written yet: no xid, but a transaction is open
        assert began is False  # now() is the transaction's start, before this statement
    async with _raw(engine) as uow:  # a lone add needs no transaction
        await uow.tasks.add(make_task(owner.id))
        assert not _driver(uow).is_in_transaction()
        await uow.commit()


async def test_a_read_only_unit_reads_in_autocommit_and_cannot_commit(
    engine: AsyncEngine, new_uow: UowFactory
) -> None:
    owner = await add_user(new_uow)
    task = await _committed(engine, make_task(owner.id))
    async with _raw(engine, read_only=True) as uow:
        assert await reach(uow, owner.id, task.id) == task
        page = await uow.tasks.list_page(reader(owner.id), TaskQuery(), limit=5)
        assert [t.id for t in page] == [task.id]
        assert not _driver(uow).is_in_transaction()
        with pytest.raises(RuntimeError, match="read-only"):
            await uow.commit()


async def test_a_lost_connection_recycles_the_pooled_ones_as_old_as_it(
    make_engine: EngineMaker, engine: AsyncEngine, new_uow: UowFactory
) -> None:
    """A database restart breaks every pooled connection: after one is found lost, the others
    of its age are replaced on their next checkout instead of each failing a request."""
    admin, engine = engine, make_engine(pool_size=2, max_overflow=0)
    owner = await add_user(new_uow)
    task = await _committed(engine, make_task(owner.id))
    both = asyncio.Barrier(2)
    first: list[int] = []

    async def hold(action: str) -> None:
        async with _raw(engine) as uow:
            first.append(_pid(uow))
            await both.wait()  # two connections out at once
            if action == "lose":
                await _terminate(admin, _pid(uow))
                await both.wait()
                await reach(uow, owner.id, task.id)
            else:
                await both.wait()

    results = await asyncio.gather(hold("lose"), hold("keep"), return_exceptions=True)
    assert sum(isinstance(r, Unavailable) for r in results) == 1
    _pool_is_whole(engine, 2)
    again: list[int] = []

    async def read() -> Task | None:
        async with _raw(engine) as uow:
            again.append(_pid(uow))
            await both.wait()
            return await reach(uow, owner.id, task.id)

    assert list(await asyncio.gather(read(), read())) == [task, task]
    assert not set(again) & set(first)  # the kept connection was recycled too
