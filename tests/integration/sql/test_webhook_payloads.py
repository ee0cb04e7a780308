"""A fanned-out delivery keeps its payload by reference to its event (PostgreSQL, SQLite): the
row stores none, the delivery log and the POST show the event's payload exactly, and an events
purge copies it in before the event goes, so the delivery keeps it for its own retention."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.memory.events import RecordingEventPublisher
from adapters.security.crypto import FernetCipher
from adapters.security.ids import UuidV7Generator
from adapters.security.tokens import RandomSecretGenerator
from adapters.sql.events import SqlEventFeed
from adapters.sql.tables import webhook_deliveries, webhook_fan_out
from adapters.sql.uow import SqlUnitOfWork
from domain.tasks import TaskDraft
from domain.use_cases import webhooks as uc
from domain.use_cases.tasks import CreateTask
from domain.webhooks import DeliveryStatus, TargetPolicy, Webhook, WebhookDraft, event_payload
from tests.integration.sql.conftest import TaskUowFactory, UowFactory, add_user
from tests.unit.projects.support import Who
from tests.unit.tasks.fakes import FakeClock
from tests.unit.webhooks.support import RULES, URL, RecordingMonitor, RecordingSender


async def _stored_payload(engine: AsyncEngine, delivery_id: str) -> str | None:
    async with engine.connect() as conn:
        value = await conn.scalar(
            select(webhook_deliveries.c.payload).where(webhook_deliveries.c.id == delivery_id)
        )
        await conn.rollback()
    return value


async def subscribe_to_tasks(
    engine: AsyncEngine,
    clock: FakeClock,
    ids: UuidV7Generator,
    owner: Who,
    cipher: FernetCipher | None = None,
) -> Webhook:
    """An enabled webhook of `owner` for every task event (`task.*`), to the test receiver, its
    secret sealed with `cipher` (a new one when None)."""
    created = await uc.CreateWebhook(
        lambda: SqlUnitOfWork(engine),
        clock,
        ids,
        RandomSecretGenerator(),
        cipher or FernetCipher(FernetCipher.generate_key()),
        TargetPolicy(),
    ).execute(owner, WebhookDraft(url=URL, events=["task.*"]))
    return created.webhook


async def test_a_delivery_shows_its_events_payload_before_and_after_the_event_is_purged(
    tasks_uow: TaskUowFactory, new_uow: UowFactory, engine: AsyncEngine
) -> None:
    feed = SqlEventFeed(engine)
    # The database outlives a test: fan out from here on, with no earlier delivery pending.
    async with engine.begin() as conn:
        await conn.execute(update(webhook_fan_out).values(position=await feed.now()))
        await conn.execute(
            update(webhook_deliveries)
            .where(webhook_deliveries.c.status == DeliveryStatus.PENDING.value)
            .values(status=DeliveryStatus.FAILED.value)
        )
    start = await feed.now()
    # Now, not a fixed date: the webhook tests' purge counts finished deliveries by age.
    clock, ids = FakeClock(datetime.now(UTC).replace(microsecond=0)), UuidV7Generator()
    cipher = FernetCipher(FernetCipher.generate_key())

    def webhook_uow() -> SqlUnitOfWork:
        return SqlUnitOfWork(engine)

    owner = Who((await add_user(new_uow)).id)
    hook = await subscribe_to_tasks(engine, clock, ids, owner, cipher)
    clock.advance()
    create = CreateTask(tasks_uow, clock, ids, RecordingEventPublisher())
    task = await create.execute(
        owner, TaskDraft(title='by reference: “ünïcode” \u2028 and a "quote"')
    )
    [item], _ = await feed.read_after(start, 10)
    expected = event_payload(item)

    fan_out = uc.FanOutEvents(webhook_uow, feed, clock, ids, batch_size=100)
    while await fan_out.step():
        pass
    log = uc.ListDeliveries(webhook_uow)
    [delivery] = (await log.execute(owner, hook.id, None, None)).items
    assert await _stored_payload(engine, delivery.id) is None  # kept by reference
    assert delivery.payload == expected
    assert json.loads(delivery.payload)["data"]["resource"]["id"] == task.id

    sender = RecordingSender()
    deliver = uc.DeliverWebhooks(
        webhook_uow,
        sender,
        cipher,
        clock,
        ids,
        RecordingMonitor(),
        RULES,
        holder="w1",
        lease=timedelta(seconds=45),
        batch_size=10,
    )
    assert await deliver.step() == 1
    assert [s.body for s in sender.sent] == [expected.encode()]

    # The event goes; a later one stays (the feed keeps a position past the purge).
    cutoff = clock.now() + timedelta(seconds=1)
    clock.advance(10)
    await create.execute(owner, TaskDraft(title="later"))
    while await feed.purge_before(cutoff, 1000):
        pass
    assert await _stored_payload(engine, delivery.id) == expected  # copied in before the purge
    got, attempts = await uc.GetDelivery(webhook_uow).execute(owner, hook.id, delivery.id)
    assert got == (await log.execute(owner, hook.id, None, None)).items[0]
    assert got.payload == expected
    assert got.status is DeliveryStatus.SUCCEEDED
    assert len(attempts) == 1

    # A redelivery after the purge sends the same body.
    await uc.RedeliverDelivery(webhook_uow, clock).execute(owner, hook.id, delivery.id)
    assert await deliver.step() == 1
    assert [s.body for s in sender.sent] == [expected.encode()] * 2


async def test_a_delivery_with_no_event_keeps_its_own_payload(
    new_uow: UowFactory, engine: AsyncEngine
) -> None:
    """A ping has no event row: its delivery stores its payload."""
    clock, ids = FakeClock(datetime.now(UTC).replace(microsecond=0)), UuidV7Generator()

    def webhook_uow() -> SqlUnitOfWork:
        return SqlUnitOfWork(engine)

    owner = Who((await add_user(new_uow)).id)
    hook = await subscribe_to_tasks(engine, clock, ids, owner)
    ping = await uc.PingWebhook(webhook_uow, clock, ids).execute(owner, hook.id)
    assert await _stored_payload(engine, ping.id) == ping.payload
    async with webhook_uow() as uow:
        assert await uow.deliveries.get(ping.id) == ping
