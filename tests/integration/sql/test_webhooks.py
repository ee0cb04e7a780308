"""The webhook ports' contract on the memory twin and the SQL unit of work (PostgreSQL, through
PgBouncer, SQLite): the use cases run end to end over each, with a recording sender."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.memory.feed import MemoryChangeFeed
from adapters.memory.uow import MemoryDatabase
from adapters.memory.webhooks import MemoryWebhookUnitOfWork
from adapters.security.crypto import FernetCipher
from adapters.security.ids import UuidV7Generator
from adapters.security.tokens import RandomSecretGenerator
from adapters.sql.tables import webhook_deliveries, webhook_fan_out
from adapters.sql.uow import SqlUnitOfWork
from domain.errors import Conflict, PreconditionFailed
from domain.projects import Membership, Project, Role
from domain.use_cases import webhooks as uc
from domain.webhooks import DeliveryStatus, SendResult, TargetPolicy, WebhookDraft
from tests.integration.sql.conftest import make_user, new_id
from tests.unit.tasks.fakes import FakeClock
from tests.unit.webhooks.support import RULES, URL, RecordingMonitor, RecordingSender

KINDS = ("memory", "sqlalchemy")


@dataclass(frozen=True)
class Who:
    user_id: str
    scopes: frozenset[str] = frozenset({"webhooks:manage"})
    project_ids: frozenset[str] | None = None


@dataclass
class Backend:
    kind: str
    uow: Callable[[], Any]
    engine: AsyncEngine | None
    clock: FakeClock
    ids: UuidV7Generator
    cipher: FernetCipher
    feed: MemoryChangeFeed
    sender: RecordingSender

    async def user_with_project(self) -> tuple[str, str]:
        user = make_user()
        project = Project(new_id(), "P", None, False, self.clock.now(), self.clock.now(), 1)
        async with self.uow() as uow:
            await uow.users.add(user)
            await uow.projects.add(project)
            await uow.memberships.add(
                Membership(project.id, user.id, Role.OWNER, project.created_at)
            )
            await uow.commit()
        return user.id, project.id

    def create(self) -> uc.CreateWebhook:
        return uc.CreateWebhook(
            self.uow, self.clock, self.ids, RandomSecretGenerator(), self.cipher, TargetPolicy()
        )

    def deliver(self, holder: str) -> uc.DeliverWebhooks:
        return uc.DeliverWebhooks(
            self.uow,
            self.sender,
            self.cipher,
            self.clock,
            self.ids,
            RecordingMonitor(),
            RULES,
            holder=holder,
            lease=timedelta(seconds=45),
            batch_size=50,
        )


@pytest.fixture(params=KINDS)
async def backend(request: pytest.FixtureRequest, engine: AsyncEngine) -> Backend:
    clock = FakeClock(datetime.now(UTC).replace(microsecond=0))
    common = (clock, UuidV7Generator(), FernetCipher(FernetCipher.generate_key()))
    if request.param == "memory":
        database = MemoryDatabase()
        return Backend(
            "memory",
            lambda: MemoryWebhookUnitOfWork(database),
            None,
            *common,
            MemoryChangeFeed(),
            RecordingSender(),
        )
    # The database outlives a test: start every one from the feed's beginning, with no pending
    # delivery of an earlier test left to claim.
    async with engine.begin() as conn:
        await conn.execute(update(webhook_fan_out).values(position=None))
        await conn.execute(
            update(webhook_deliveries)
            .where(webhook_deliveries.c.status == "pending")
            .values(status="failed")
        )
    return Backend(
        "sqlalchemy",
        lambda: SqlUnitOfWork(engine),
        engine,
        *common,
        MemoryChangeFeed(),
        RecordingSender(),
    )


async def test_a_webhook_round_trips_and_updates_by_version(backend: Backend) -> None:
    owner, project = await backend.user_with_project()
    who = Who(owner)
    created = await backend.create().execute(
        who,
        WebhookDraft(
            url=URL, events=["task.*", "comment.created"], project_id=project, description="ci"
        ),
    )
    got = await uc.GetWebhook(backend.uow).execute(who, created.webhook.id)
    assert got == created.webhook
    assert backend.cipher.decrypt(got.secret) == created.secret
    update_ = uc.UpdateWebhook(backend.uow, backend.clock, TargetPolicy())
    changed = await update_.execute(who, got.id, {"enabled": False, "description": None}, 1)
    assert (changed.enabled, changed.description, changed.version) == (False, None, 2)
    with pytest.raises(PreconditionFailed):
        await update_.execute(who, got.id, {"enabled": True}, 1)
    assert await uc.ListWebhooks(backend.uow).execute(who) == [changed]
    await uc.DeleteWebhook(backend.uow).execute(who, got.id, 2)
    assert await uc.ListWebhooks(backend.uow).execute(who) == []


async def test_fan_out_delivery_attempts_and_pages(backend: Backend) -> None:
    owner, project = await backend.user_with_project()
    who = Who(owner)
    hook = (await backend.create().execute(who, WebhookDraft(url=URL, events=["task.*"]))).webhook
    for _ in range(3):
        backend.clock.advance()
        event_id = new_id()
        backend.feed.append(
            event_id=event_id,
            type="task.created",
            project_id=project,
            occurred_at=backend.clock.now(),
            body={"id": event_id},
        )
    fan_out = uc.FanOutEvents(backend.uow, backend.feed, backend.clock, backend.ids, batch_size=2)
    assert await fan_out.step() == 2
    assert await fan_out.step() == 1
    assert await fan_out.step() == 0
    backend.sender.answers = [SendResult(503, "answered 503", "busy", 7)]
    assert await backend.deliver("w1").step() == 3
    pages = uc.ListDeliveries(backend.uow)
    first = await pages.execute(who, hook.id, None, None, 2)
    assert first.next_position is not None
    second = await pages.execute(who, hook.id, None, first.next_position, 2)
    everything = first.items + second.items
    assert len(everything) == 3
    assert second.next_position is None
    assert [d.created_at for d in everything] == sorted(
        (d.created_at for d in everything), reverse=True
    )
    pending = (await pages.execute(who, hook.id, "pending", None)).items
    succeeded = (await pages.execute(who, hook.id, "succeeded", None)).items
    assert (len(pending), len(succeeded)) == (1, 2)
    delivery, attempts = await uc.GetDelivery(backend.uow).execute(who, hook.id, pending[0].id)
    assert delivery.attempts == 1
    assert delivery.next_attempt_at is not None
    assert [(a.response_status, a.error, a.response_body) for a in attempts] == [
        (503, "answered 503", "busy")
    ]
    async with backend.uow() as uow:
        backlog = await uow.deliveries.backlog()
    assert backlog.pending == 1
    assert backlog.oldest_due_at == delivery.next_attempt_at


async def test_concurrent_claims_never_share_a_delivery(backend: Backend) -> None:
    owner, _ = await backend.user_with_project()
    who = Who(owner)
    hook = (await backend.create().execute(who, WebhookDraft(url=URL, events=["task.*"]))).webhook
    ping = uc.PingWebhook(backend.uow, backend.clock, backend.ids)
    for _ in range(20):
        await ping.execute(who, hook.id)
    now = backend.clock.now()

    async def claim(holder: str) -> list[str]:
        got: list[str] = []
        for _ in range(5):
            async with backend.uow() as uow:
                claimed = await uow.deliveries.claim(now, holder, now + timedelta(seconds=30), 3)
                await uow.commit()
            got += [d.id for d in claimed]
        return got

    results = await asyncio.gather(*(claim(f"w{n}") for n in range(4)))
    everything = [d for r in results for d in r]
    assert len(everything) == len(set(everything)) == 20


async def test_a_claim_leases_at_most_its_limit_oldest_due_first(backend: Backend) -> None:
    owner, _ = await backend.user_with_project()
    who = Who(owner)
    hook = (await backend.create().execute(who, WebhookDraft(url=URL, events=["task.*"]))).webhook
    ping = uc.PingWebhook(backend.uow, backend.clock, backend.ids)
    made = []
    for _ in range(7):
        made.append((await ping.execute(who, hook.id)).id)
        backend.clock.advance()
    now = backend.clock.now()
    batches = []
    for holder in ("w1", "w2", "w3", "w4"):
        async with backend.uow() as uow:
            claimed = await uow.deliveries.claim(now, holder, now + timedelta(seconds=30), 3)
            await uow.commit()
        assert all(d.leased_by == holder for d in claimed)
        batches.append([d.id for d in claimed])
    assert batches == [made[0:3], made[3:6], made[6:7], []]


async def test_a_disabled_webhook_gets_no_attempts_and_redelivery_is_refused(
    backend: Backend,
) -> None:
    owner, _ = await backend.user_with_project()
    who = Who(owner)
    hook = (await backend.create().execute(who, WebhookDraft(url=URL, events=["task.*"]))).webhook
    delivery = await uc.PingWebhook(backend.uow, backend.clock, backend.ids).execute(who, hook.id)
    await uc.UpdateWebhook(backend.uow, backend.clock, TargetPolicy()).execute(
        who, hook.id, {"enabled": False}
    )
    assert await backend.deliver("w1").step() == 0
    with pytest.raises(Conflict):
        await uc.RedeliverDelivery(backend.uow, backend.clock).execute(who, hook.id, delivery.id)
    async with backend.uow() as uow:
        stored = await uow.deliveries.get(delivery.id)
    assert stored is not None
    assert stored.status is DeliveryStatus.PENDING
    assert str(uuid.UUID(stored.id)) == stored.id


async def test_real_posts_to_a_local_receiver_verify_and_survive_a_dead_worker(
    backend: Backend,
) -> None:
    """The whole path over HTTP: fan-out, a worker that claims and dies, the lease running out,
    another worker's POST to a local receiver (private targets allowed), the official verifier."""
    from standardwebhooks.webhooks import Webhook as Verifier

    from adapters.webhooks.sender import HttpxWebhookSender
    from tests.unit.webhooks.receiver import Answer, running_receiver

    policy = TargetPolicy(allow_http=True, allow_private=True)
    owner, project = await backend.user_with_project()
    async with running_receiver() as receiver:
        created = await uc.CreateWebhook(
            backend.uow, backend.clock, backend.ids, RandomSecretGenerator(), backend.cipher, policy
        ).execute(Who(owner), WebhookDraft(url=receiver.url, events=["task.*"]))
        backend.clock.advance()
        backend.feed.append(
            event_id=new_id(),
            type="task.created",
            project_id=project,
            occurred_at=backend.clock.now(),
            body={"title": "Ship it"},
        )
        fan_out = uc.FanOutEvents(
            backend.uow, backend.feed, backend.clock, backend.ids, batch_size=10
        )
        assert await fan_out.step() == 1
        now = backend.clock.now()
        async with backend.uow() as uow:  # a worker claims, then is killed mid-attempt
            [claimed] = await uow.deliveries.claim(now, "dead", now + timedelta(seconds=45), 10)
            await uow.commit()
        sender = HttpxWebhookSender(policy, timeout=5)
        backend.sender = sender  # type: ignore[assignment]
        receiver.answers = [Answer(503, b"busy"), Answer(204, b"")]
        try:
            assert await backend.deliver("w2").step() == 0  # still leased
            backend.clock.advance(46)
            assert await backend.deliver("w2").step() == 1  # 503: retried in 5 s
            backend.clock.advance(5)
            assert await backend.deliver("w2").step() == 1
        finally:
            await sender.aclose()
    first, second = receiver.received
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == claimed.id
    payload = Verifier(created.secret).verify(second.body, second.headers)
    assert payload["type"] == "task.created"
    assert payload["data"] == {"title": "Ship it"}
    _, attempts = await uc.GetDelivery(backend.uow).execute(
        Who(owner), created.webhook.id, claimed.id
    )
    assert [a.response_status for a in attempts] == [503, 204]
    assert attempts[0].response_body == "busy"


async def test_finished_deliveries_past_retention_are_purged_with_their_attempts(
    backend: Backend,
) -> None:
    owner, _ = await backend.user_with_project()
    who = Who(owner)
    hook = (await backend.create().execute(who, WebhookDraft(url=URL, events=["task.*"]))).webhook
    ping = uc.PingWebhook(backend.uow, backend.clock, backend.ids)
    done, waiting = await ping.execute(who, hook.id), await ping.execute(who, hook.id)
    backend.sender.answers = [SendResult(200, None, "", 1), SendResult(500, "answered 500", "", 1)]
    assert await backend.deliver("w1").step() == 2
    purge = uc.PurgeFinishedDeliveries(
        backend.uow, backend.clock, retention=timedelta(days=30), batch_size=10
    )
    backend.clock.advance(29 * 86400)
    assert await purge.step() == 0
    backend.clock.advance(2 * 86400)
    async with backend.uow() as uow:  # the failed one is still pending a retry: kept
        before = await uow.deliveries.get(waiting.id)
    assert before is not None
    assert before.status is DeliveryStatus.PENDING
    purged = 0
    while handled := await purge.step():  # earlier tests' finished deliveries go too
        purged += handled
    assert purged >= 1
    async with backend.uow() as uow:
        assert await uow.deliveries.get(done.id) is None
        assert await uow.deliveries.attempts(done.id) == []
        assert await uow.deliveries.get(waiting.id) is not None
