"""Through a real PgBouncer in transaction mode, with more clients than server connections:
every unit of work (read-only ones in autocommit too) keeps working while server connections
change hands between its statements."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.sql.engine import create_engine
from adapters.sql.uow import SqlUnitOfWork
from domain.task_queries import TaskQuery
from tests.integration.pgbouncer import PgBouncer
from tests.integration.sql.conftest import add_user, reach, reader
from tests.integration.sql.test_tasks import make_task

CLIENTS = 24  # against 4 server connections


@pytest.fixture
async def bounced(
    pgbouncer_database: tuple[str, str], pgbouncer: PgBouncer
) -> AsyncIterator[AsyncEngine]:
    _direct, through = pgbouncer_database
    assert pgbouncer.pool_size < CLIENTS
    engine = create_engine(through, pool_size=CLIENTS, max_overflow=0, pgbouncer=True)
    yield engine
    await engine.dispose()


async def test_many_clients_share_few_server_connections(bounced: AsyncEngine) -> None:
    user = await add_user(lambda: SqlUnitOfWork(bounced))

    async def client(index: int) -> None:
        for round_ in range(6):
            task = make_task(user.id, title=f"client {index} round {round_}")
            async with SqlUnitOfWork(bounced, raw=True) as uow:
                await uow.tasks.add(task)
                await uow.commit()
            async with SqlUnitOfWork(bounced, read_only=True) as uow:
                assert (await uow.users.get(user.id)) == user
                assert (await uow.users.get_by_email(user.email)) == user
                assert (await reach(uow, user.id, task.id)) == task
            async with SqlUnitOfWork(bounced, read_only=True, raw=True) as uow:
                assert (await reach(uow, user.id, task.id)) == task
                page = await uow.tasks.list_page(reader(user.id), TaskQuery(), limit=5)
                assert page
            async with SqlUnitOfWork(bounced) as uow:
                assert await reach(uow, user.id, task.id) == task
                updated = replace(task, title="renamed", version=2)
                assert await uow.tasks.update(updated, 1) is True
                await uow.commit()
            async with SqlUnitOfWork(bounced, raw=True) as uow:
                assert await uow.tasks.delete(user.id, task.id, 2) is True
                await uow.commit()

    await asyncio.gather(*(client(i) for i in range(CLIENTS)))
