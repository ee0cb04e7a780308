"""The statements each task use case sends to PostgreSQL, counted on the driver connection.

The budget: a create is one INSERT (the membership check is inside it); a get or a list is one
SELECT (autocommit: no BEGIN, no ROLLBACK); an update or a delete is BEGIN, the read, the
version-checked write and COMMIT. A change that adds a statement to any of them fails here. The
create moves the owner's task count in the same statement (a WITH around the INSERT); the delete
moves the task and its subtree to the trash in one UPDATE (the count stays: trashed tasks keep
their places).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.memory.events import RecordingEventPublisher
from adapters.security.ids import UuidV7Generator
from adapters.sql.uow import SqlUnitOfWork
from domain.task_queries import TaskFilter, TaskQuery
from domain.tasks import TaskDraft
from domain.use_cases.task_batch import CreateOp, Operation, RunTaskBatch, UpdateOp
from domain.use_cases.tasks import CreateTask, DeleteTask, GetTask, ListTasks, UpdateTask
from tests.integration.sql.conftest import EngineMaker, UowFactory, add_user
from tests.unit.projects.support import Who
from tests.unit.tasks.fakes import FakeClock, SequentialIds

POSTGRESQL_ONLY = True  # conftest drops this module's SQLite runs


@contextmanager
def statements_sent(engine: AsyncEngine) -> Iterator[list[str]]:
    """Every statement the engine's connections send while inside, first word only (BEGIN,
    SELECT, INSERT, UPDATE, DELETE, WITH, COMMIT, ROLLBACK), from asyncpg's query logger."""
    sent: list[str] = []
    logged: list[Any] = []

    def record(query: Any) -> None:
        sent.append(query.query.split(None, 1)[0].rstrip(";").upper())

    def on_checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        driver = dbapi_connection.driver_connection
        if driver not in logged:
            driver.add_query_logger(record)
            logged.append(driver)

    pool = engine.sync_engine.pool
    event.listen(pool, "checkout", on_checkout)
    try:
        yield sent
    finally:
        event.remove(pool, "checkout", on_checkout)
        for driver in logged:
            driver.remove_query_logger(record)


async def test_each_task_use_case_stays_within_its_statements(
    make_engine: EngineMaker, new_uow: UowFactory
) -> None:
    engine = make_engine(pool_size=1, max_overflow=0)
    owner = Who((await add_user(new_uow)).id)

    def factory(*, read_only: bool) -> Callable[[], SqlUnitOfWork]:
        return lambda: SqlUnitOfWork(engine, read_only=read_only, raw=True)

    writes, reads = factory(read_only=False), factory(read_only=True)
    clock, events, ids = FakeClock(), RecordingEventPublisher(), SequentialIds()
    create = CreateTask(writes, clock, ids, events)
    get, listing = GetTask(reads), ListTasks(reads)
    update, delete = (
        UpdateTask(writes, clock, events, ids=ids),
        DeleteTask(writes, clock, events, ids=ids),
    )
    query = TaskQuery(TaskFilter(labels=("a",), q="x"))

    async def each_once() -> dict[str, list[str]]:
        sent: dict[str, list[str]] = {}
        with statements_sent(engine) as log:

            async def taken() -> list[str]:
                for _ in range(3):  # asyncpg calls its query loggers soon after, not at once
                    await asyncio.sleep(0)
                words, log[:] = log[:], []
                return words

            task = await create.execute(owner, TaskDraft(title="x", labels=["a"]))
            sent["create"] = await taken()
            await get.execute(owner, task.id)
            sent["get"] = await taken()
            await listing.execute(owner, query)
            sent["list"] = await taken()
            await update.execute(owner, task.id, {"title": "y"})
            sent["update"] = await taken()
            await delete.execute(owner, task.id)
            sent["delete"] = await taken()
        return sent

    first = await each_once()  # the first use of each statement on this connection
    again = await each_once()  # served from the prepared-statement cache
    expected = {
        "create": ["WITH"],  # the task's INSERT, counted, with its event
        "get": ["SELECT"],
        "list": ["SELECT"],
        "update": ["BEGIN", "SELECT", "UPDATE", "INSERT", "COMMIT"],  # + the event
        # + the subtree (one event per task moved to the trash) and the events
        "delete": ["BEGIN", "SELECT", "WITH", "UPDATE", "INSERT", "COMMIT"],
    }
    assert first == expected
    assert again == expected


async def test_an_atomic_batch_of_creates_is_one_statement(
    make_engine: EngineMaker, new_uow: UowFactory
) -> None:
    """A batch's stretch of creates for one project: the tasks, the owner's counter and the
    created events in one INSERT, inside the batch's transaction when there is more to it."""
    engine = make_engine(pool_size=1, max_overflow=0)
    owner = Who((await add_user(new_uow)).id)
    batch = RunTaskBatch(
        lambda: SqlUnitOfWork(engine, raw=True),
        FakeClock(),
        UuidV7Generator(),
        RecordingEventPublisher(),
    )
    creates = [CreateOp(TaskDraft(title=f"t{n}", labels=["a"])) for n in range(50)]
    await batch.execute(owner, creates[:2])  # the first use prepares the statement
    with statements_sent(engine) as log:
        results = await batch.execute(owner, creates)
        for _ in range(3):  # asyncpg calls its query loggers soon after, not at once
            await asyncio.sleep(0)
    assert len(results) == 50
    # Only creates: that statement alone, atomic by itself, so the owner's counter row is
    # locked only while it runs.
    assert log == ["WITH"]
    with statements_sent(engine) as log:
        await batch.execute(owner, creates, atomic=False)  # all succeed: the same one write
        for _ in range(3):
            await asyncio.sleep(0)
    assert log == ["WITH"]
    old = results[0].task
    assert old is not None
    mixed: list[Operation] = [*creates[:10], UpdateOp(old.id, {"title": "y"}), *creates[:10]]
    with statements_sent(engine) as log:
        await batch.execute(owner, mixed)
        for _ in range(3):
            await asyncio.sleep(0)
    assert log == ["BEGIN", "WITH", "SELECT", "UPDATE", "INSERT", "WITH", "COMMIT"]
