"""PostgreSQL: an events purge that runs while a fan-out writes a by-reference delivery of one of
its events waits for that fan-out (the insert locks the event FOR KEY SHARE), then copies the
payload into the delivery: a delivery never outlives its payload."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.memory.events import RecordingEventPublisher
from adapters.security.ids import UuidV7Generator
from adapters.sql.events import SqlEventFeed
from adapters.sql.tables import webhook_deliveries
from adapters.sql.uow import SqlUnitOfWork
from domain.tasks import TaskDraft
from domain.use_cases.tasks import CreateTask
from domain.webhooks import event_payload, new_delivery
from tests.integration.sql.conftest import TaskUowFactory, UowFactory, add_user
from tests.integration.sql.test_webhook_payloads import subscribe_to_tasks
from tests.unit.projects.support import Who
from tests.unit.tasks.fakes import FakeClock

POSTGRESQL_ONLY = True  # conftest drops this module's SQLite runs (one writer: no race there)


async def test_a_purge_waits_for_a_fan_out_writing_a_delivery_of_its_event(
    tasks_uow: TaskUowFactory, new_uow: UowFactory, engine: AsyncEngine
) -> None:
    feed = SqlEventFeed(engine)
    start = await feed.now()
    clock, ids = FakeClock(datetime.now(UTC).replace(microsecond=0)), UuidV7Generator()
    owner = Who((await add_user(new_uow)).id)
    hook = await subscribe_to_tasks(engine, clock, ids, owner)
    create = CreateTask(tasks_uow, clock, ids, RecordingEventPublisher())
    await create.execute(owner, TaskDraft(title="purged while fanned out"))
    [item], _ = await feed.read_after(start, 10)
    cutoff = clock.now() + timedelta(seconds=1)
    clock.advance(10)
    await create.execute(owner, TaskDraft(title="later"))  # the feed keeps a later event
    delivery = new_delivery(
        delivery_id=ids.new_id(),
        webhook_id=hook.id,
        event_id=item.event_id,
        event_type=item.type,
        project_id=item.project_id,
        body=event_payload(item),
        now=clock.now(),
    )

    async with SqlUnitOfWork(engine) as uow:
        await uow.deliveries.add_many([delivery])  # by reference, not yet committed
        purge = asyncio.create_task(feed.purge_before(cutoff, 100_000))
        await asyncio.sleep(0.5)
        assert not purge.done()  # its DELETE waits for the fan-out's lock on the event
        await uow.commit()
    assert await purge >= 1
    async with engine.connect() as conn:
        stored = await conn.scalar(
            select(webhook_deliveries.c.payload).where(webhook_deliveries.c.id == delivery.id)
        )
    assert stored == delivery.payload
    async with SqlUnitOfWork(engine) as uow:
        assert await uow.deliveries.get(delivery.id) == delivery
