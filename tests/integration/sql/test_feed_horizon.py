"""The change feed's horizon on PostgreSQL is this database's: a transaction held open in another
database of the same server (transaction ids are the server's) does not hold back the feed,
while one held open here still does (its events could land before what the feed shows next)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.sql.events import SqlEventFeed
from tests.integration.sql.conftest import UowFactory
from tests.integration.sql.test_change_feed_order import _event

POSTGRESQL_ONLY = True
# Through PgBouncer only the configured database is reachable; the direct runs cover the rule.
DIRECT_ONLY = {"test_a_transaction_in_another_database_does_not_hold_back_the_feed"}


@asynccontextmanager
async def _open_write(dsn: str, database: str | None = None) -> AsyncIterator[None]:
    """A transaction with a transaction id, held open in `database` (default: the DSN's)."""
    conn = await asyncpg.connect(dsn, database=database) if database else await asyncpg.connect(dsn)
    try:
        transaction = conn.transaction()
        await transaction.start()
        await conn.fetchval("SELECT pg_current_xact_id()")  # takes the id
        yield
        await transaction.rollback()
    finally:
        await conn.close()


async def _commit_event(new_uow: UowFactory) -> str:
    event = _event(str(uuid.uuid4()))
    async with new_uow() as uow:
        await uow.events.append(event)
        await uow.commit()
    return event.id


def _dsn(engine: AsyncEngine) -> str:
    return engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


async def test_a_transaction_in_another_database_does_not_hold_back_the_feed(
    engine: AsyncEngine, new_uow: UowFactory
) -> None:
    feed = SqlEventFeed(engine)
    start = await feed.now()
    async with _open_write(_dsn(engine), database="postgres"):
        written = await _commit_event(new_uow)
        items, _ = await feed.read_after(start, 100)
    assert written in [item.event_id for item in items]


async def test_a_transaction_here_holds_back_the_feed_until_it_ends(
    engine: AsyncEngine, new_uow: UowFactory
) -> None:
    feed = SqlEventFeed(engine)
    start = await feed.now()
    async with _open_write(_dsn(engine)):
        written = await _commit_event(new_uow)
        held, position = await feed.read_after(start, 100)
        assert written not in [item.event_id for item in held]
    items, _ = await feed.read_after(position, 100)
    assert written in [item.event_id for item in items]
