"""The unit of work's two modes on both databases: transactional writes, autocommit reads."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.sql.uow import SqlUnitOfWork
from tests.integration.sql.conftest import UowFactory, add_user, make_user


async def test_leaving_without_commit_rolls_back(new_uow: UowFactory) -> None:
    user = make_user()
    async with new_uow() as uow:
        await uow.users.add(user)
    async with new_uow() as uow:
        assert await uow.users.get(user.id) is None


async def test_a_read_only_unit_sees_committed_rows_and_refuses_to_commit(
    engine: AsyncEngine, new_uow: UowFactory
) -> None:
    user = await add_user(new_uow)
    async with SqlUnitOfWork(engine, read_only=True) as uow:
        assert await uow.users.get(user.id) == user
        with pytest.raises(RuntimeError, match="read-only"):
            await uow.commit()


async def test_a_read_only_unit_leaves_the_pooled_connection_transactional(
    engine: AsyncEngine, new_uow: UowFactory
) -> None:
    """Autocommit is per checkout: a write unit after a read unit still rolls back."""
    for _ in range(3):
        async with SqlUnitOfWork(engine, read_only=True) as uow:
            await uow.users.get(make_user().id)
    user = make_user()
    async with new_uow() as uow:
        await uow.users.add(user)
        await uow.rollback()
    async with new_uow() as uow:
        assert await uow.users.get(user.id) is None
