"""The statements one webhook delivery step sends to PostgreSQL: they must not grow with the
batch. The claim (one UPDATE: the SKIP LOCKED pick, the lease, the leased rows returned; then
the webhook and the membership), the backlog gauge (only when due) and the recording (the webhook
locked, the batch's deliveries read, every attempt in one INSERT, every changed delivery in one
UPDATE). A statement per delivery creeping back fails here.

SQLAlchemy runs its statements as asyncpg prepared statements, which asyncpg's query logger
does not see: the statements are counted where SQLAlchemy hands them to the driver, and the
transaction control (BEGIN, COMMIT, ROLLBACK) on the driver's query logger.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import event, update
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.security.crypto import FernetCipher
from adapters.security.ids import UuidV7Generator
from adapters.security.tokens import RandomSecretGenerator
from adapters.sql.tables import webhook_deliveries
from adapters.sql.uow import SqlUnitOfWork
from domain.projects import Membership, Project, Role
from domain.use_cases import webhooks as uc
from domain.webhooks import DeliveryStatus, TargetPolicy, WebhookDraft, new_delivery, payload
from tests.integration.sql.conftest import EngineMaker, add_user, new_id
from tests.integration.sql.test_round_trips import statements_sent
from tests.unit.projects.support import Who
from tests.unit.tasks.fakes import FakeClock
from tests.unit.webhooks.support import RULES, URL, RecordingMonitor, RecordingSender

POSTGRESQL_ONLY = True  # conftest drops this module's SQLite runs

CLAIM = ["UPDATE", "SELECT", "SELECT"]
BACKLOG = ["SELECT", "SELECT"]
RECORD = ["SELECT", "SELECT", "INSERT", "UPDATE"]


@contextmanager
def sent(engine: AsyncEngine) -> Iterator[tuple[list[str], list[str]]]:
    """(statements, transaction control) the engine sends while inside, first word only."""
    statements: list[str] = []

    def before(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement.split(None, 1)[0].upper())

    event.listen(engine.sync_engine, "before_cursor_execute", before)
    try:
        with statements_sent(engine) as control:
            yield statements, control
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", before)


async def test_a_delivery_step_sends_the_same_statements_for_any_batch(
    make_engine: EngineMaker,
) -> None:
    engine = make_engine(pool_size=1, max_overflow=0)

    def new_uow() -> SqlUnitOfWork:
        return SqlUnitOfWork(engine)

    # The database outlives a test: no pending delivery of an earlier one is left to claim.
    async with engine.begin() as conn:
        await conn.execute(
            update(webhook_deliveries)
            .where(webhook_deliveries.c.status == DeliveryStatus.PENDING.value)
            .values(status=DeliveryStatus.FAILED.value)
        )
    clock = FakeClock(datetime.now(UTC).replace(microsecond=0))
    ids, cipher = UuidV7Generator(), FernetCipher(FernetCipher.generate_key())
    owner = await add_user(new_uow)
    project = Project(new_id(), "P", None, False, clock.now(), clock.now(), 1)
    async with new_uow() as uow:
        await uow.projects.add(project)
        await uow.memberships.add(Membership(project.id, owner.id, Role.OWNER, clock.now()))
        await uow.commit()
    created = await uc.CreateWebhook(
        new_uow, clock, ids, RandomSecretGenerator(), cipher, TargetPolicy()
    ).execute(Who(owner.id), WebhookDraft(url=URL, events=["task.*"]))
    sender, monitor = RecordingSender(), RecordingMonitor()
    deliver = uc.DeliverWebhooks(
        new_uow,
        sender,
        cipher,
        clock,
        ids,
        monitor,
        RULES,
        holder="w1",
        lease=timedelta(seconds=45),
        batch_size=50,
    )

    async def step_with(deliveries: int) -> tuple[list[str], list[str]]:
        async with new_uow() as uow:
            for _ in range(deliveries):
                event_id = ids.new_id()
                body = payload("task.created", clock.now(), {"id": event_id})
                await uow.deliveries.add(
                    new_delivery(
                        delivery_id=ids.new_id(),
                        webhook_id=created.webhook.id,
                        event_id=event_id,
                        event_type="task.created",
                        project_id=project.id,
                        body=body,
                        now=clock.now(),
                    )
                )
            await uow.commit()
        clock.advance()
        with sent(engine) as (statements, control):
            assert await deliver.step() == deliveries
            for _ in range(3):  # asyncpg calls its query loggers soon after, not at once
                await asyncio.sleep(0)
        return statements, control

    # The claim and the recording are a transaction each; the backlog is read after the
    # claim's commit, in a transaction of its own that the unit of work's exit rolls back.
    with_backlog = (
        CLAIM + BACKLOG + RECORD,
        ["BEGIN", "COMMIT", "BEGIN", "ROLLBACK", "BEGIN", "COMMIT"],
    )
    without = (CLAIM + RECORD, ["BEGIN", "COMMIT", "BEGIN", "COMMIT"])
    assert await step_with(2) == with_backlog  # the first step reads the backlog
    assert await step_with(40) == without  # the gauge is not due yet
    clock.advance(int(uc.BACKLOG_EVERY.total_seconds()))
    assert await step_with(5) == with_backlog
    assert len(sender.sent) == 47
    assert [b.pending for b in monitor.backlogs] == [2, 5]  # read while the batch is leased
    async with new_uow() as uow:
        page = await uow.deliveries.page(
            created.webhook.id, DeliveryStatus.SUCCEEDED, None, limit=100
        )
        attempts = [await uow.deliveries.attempts(d.id) for d in page]
    assert len(page) == 47
    assert all(len(a) == 1 and a[0].response_status == 200 for a in attempts)
