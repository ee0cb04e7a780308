"""Webhook use cases over the memory twins: subscriptions, fan-out and delivery."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook as Verifier

from domain.errors import Conflict, Forbidden, Invalid, NotFound, PreconditionFailed
from domain.projects import Role
from domain.use_cases import webhooks as uc
from domain.webhooks import DeliveryStatus, SendResult, WebhookDraft
from tests.unit.projects.support import TASKS_ONLY, Who
from tests.unit.webhooks.support import URL, HookWorld


@pytest.fixture
def world() -> HookWorld:
    return HookWorld()


async def _create(world: HookWorld, who: Who, **fields: object) -> uc.CreatedWebhook:
    draft = WebhookDraft(**{"url": URL, "events": ["task.*"], **fields})  # type: ignore[arg-type]
    return await world.create().execute(who, draft)


async def test_create_shows_the_secret_once_and_stores_it_encrypted(world: HookWorld) -> None:
    alice = Who(world.user("alice").id)
    created = await _create(world, alice)
    assert created.secret.startswith("whsec_")
    assert len(created.secret) == 6 + 44
    stored = world.database.tables["webhooks"][created.webhook.id]
    assert created.secret not in stored.secret
    assert world.cipher.decrypt(stored.secret) == created.secret


async def test_webhooks_need_the_scope_and_stay_their_owners(world: HookWorld) -> None:
    alice, bob = Who(world.user("alice").id), Who(world.user("bob").id)
    with pytest.raises(Forbidden):
        await _create(world, Who(alice.user_id, TASKS_ONLY))
    hook = (await _create(world, alice)).webhook
    with pytest.raises(NotFound):
        await uc.GetWebhook(world.hook_uow).execute(bob, hook.id)
    with pytest.raises(NotFound):
        await uc.DeleteWebhook(world.hook_uow).execute(bob, hook.id)
    assert await uc.ListWebhooks(world.hook_uow).execute(bob) == []
    assert [w.id for w in await uc.ListWebhooks(world.hook_uow).execute(alice)] == [hook.id]


async def test_the_project_must_be_readable(world: HookWorld) -> None:
    alice, bob = world.user("alice"), world.user("bob")
    project = world.project()
    world.join(project, alice, Role.VIEWER)
    assert (await _create(world, Who(alice.id), project_id=project.id)).webhook.project_id
    with pytest.raises(Invalid) as exc:
        await _create(world, Who(bob.id), project_id=project.id)
    assert [e.field for e in exc.value.errors] == ["project_id"]
    with pytest.raises(Invalid):
        await _create(world, Who(alice.id, project_ids={project.id}))  # restricted, no project


async def test_update_checks_the_version(world: HookWorld) -> None:
    alice = Who(world.user("alice").id)
    hook = (await _create(world, alice)).webhook
    changed = await world.update().execute(alice, hook.id, {"description": "ci"}, 1)
    assert changed.version == 2
    assert changed.description == "ci"
    with pytest.raises(PreconditionFailed):
        await world.update().execute(alice, hook.id, {"description": "x"}, 1)


def _event(world: HookWorld, project_id: str, type_: str = "task.created") -> None:
    world.clock.advance()
    event_id = world.ids.new_id()
    world.feed.append(
        event_id=event_id,
        type=type_,
        project_id=project_id,
        occurred_at=world.clock.now(),
        body={"id": event_id, "type": type_, "project_id": project_id},
    )


async def test_fan_out_matches_patterns_projects_and_readers_exactly_once(
    world: HookWorld,
) -> None:
    alice, bob = world.user("alice"), world.user("bob")
    shared, other = world.project(), world.project("Other")
    world.join(shared, alice, Role.OWNER)
    world.join(shared, bob, Role.VIEWER)
    world.join(other, alice, Role.OWNER)
    every = (await _create(world, Who(alice.id))).webhook
    only_shared = (await _create(world, Who(alice.id), project_id=shared.id)).webhook
    comments = (await _create(world, Who(bob.id), events=["comment.*"])).webhook
    bobs = (await _create(world, Who(bob.id))).webhook
    _event(world, shared.id)
    _event(world, other.id)
    _event(world, shared.id, "comment.created")
    assert await world.fan_out().step() == 3
    assert await world.fan_out().step() == 0
    rows = world.database.tables["deliveries"].values()
    got = sorted((d.webhook_id, d.event_type, d.project_id) for d in rows)
    assert got == sorted(
        [
            (every.id, "task.created", shared.id),
            (every.id, "task.created", other.id),
            (only_shared.id, "task.created", shared.id),
            (comments.id, "comment.created", shared.id),
            (bobs.id, "task.created", shared.id),  # bob cannot read `other`
        ]
    )
    body = json.loads(next(iter(rows)).payload)
    assert set(body) == {"type", "timestamp", "data"}
    assert body["timestamp"].endswith("Z")


class CountingFeed:
    """The memory feed, counting the reads of events."""

    def __init__(self, feed: Any) -> None:
        self.feed, self.reads = feed, 0

    async def read_after(self, position: str | None, limit: int) -> Any:
        self.reads += 1
        return await self.feed.read_after(position, limit)

    async def now(self) -> str:
        return str(await self.feed.now())


async def test_without_webhooks_the_fan_out_moves_on_without_reading_events(
    world: HookWorld,
) -> None:
    alice = world.user("alice")
    project = world.project()
    world.join(project, alice, Role.OWNER)
    for _ in range(3):
        _event(world, project.id)
    feed = CountingFeed(world.feed)
    fan_out = uc.FanOutEvents(world.hook_uow, feed, world.clock, world.ids, batch_size=100)
    assert await fan_out.step() == 0
    assert feed.reads == 0
    async with world.hook_uow() as uow:
        assert await uow.feed_position.get() == "3"  # past the events no webhook wanted
    hook = (await _create(world, Who(alice.id))).webhook
    _event(world, project.id)
    assert await fan_out.step() == 1  # only the event after the webhook was made
    assert [d.webhook_id for d in world.database.tables["deliveries"].values()] == [hook.id]


async def test_a_stale_fan_out_adds_nothing(world: HookWorld) -> None:
    alice = world.user("alice")
    project = world.project()
    world.join(project, alice, Role.OWNER)
    await _create(world, Who(alice.id))
    _event(world, project.id)
    async with world.hook_uow() as uow:
        assert await uow.feed_position.advance(None, "1")
        await uow.commit()
    assert await world.fan_out().step() == 0
    assert world.database.tables["deliveries"] == {}


async def _one_delivery(world: HookWorld) -> tuple[str, str]:
    alice = world.user("alice")
    project = world.project()
    world.join(project, alice, Role.OWNER)
    created = await _create(world, Who(alice.id))
    _event(world, project.id)
    await world.fan_out().step()
    return created.webhook.id, created.secret


async def test_a_delivery_is_signed_and_verifies_with_standardwebhooks(world: HookWorld) -> None:
    hook_id, secret = await _one_delivery(world)
    assert await world.deliver().step() == 1
    sent = world.sender.sent[0]
    delivery = next(iter(world.database.tables["deliveries"].values()))
    assert sent.headers["webhook-id"] == delivery.id
    Verifier(secret).verify(sent.body, sent.headers)  # raises when the signature is wrong
    assert delivery.status is DeliveryStatus.SUCCEEDED
    assert world.monitor.outcomes == ["success"]
    _, attempts = await uc.GetDelivery(world.hook_uow).execute(
        Who(world.database.tables["webhooks"][hook_id].owner_id), hook_id, delivery.id
    )
    assert [a.response_status for a in attempts] == [200]


async def test_failures_retry_with_the_same_id_and_410_disables(world: HookWorld) -> None:
    hook_id, _ = await _one_delivery(world)
    world.sender.answers = [SendResult(500, "answered 500", "no", 4), SendResult(410, "x", "", 1)]
    await world.deliver().step()
    assert await world.deliver().step() == 0  # not due for 5 s
    world.clock.advance(5)
    await world.deliver().step()
    first, second = world.sender.sent
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    hook = world.database.tables["webhooks"][hook_id]
    assert not hook.enabled
    assert hook.disabled_reason == "the endpoint answered 410 Gone"
    owner = Who(hook.owner_id)
    with pytest.raises(Conflict):
        await uc.PingWebhook(world.hook_uow, world.clock, world.ids).execute(owner, hook_id)


async def test_a_dead_workers_lease_runs_out_and_the_delivery_is_retried(
    world: HookWorld,
) -> None:
    await _one_delivery(world)
    now = world.clock.now()
    async with world.hook_uow() as uow:  # a worker claims, then dies before recording
        assert len(await uow.deliveries.claim(now, "dead", now + timedelta(seconds=45), 10)) == 1
        await uow.commit()
    assert await world.deliver().step() == 0
    world.clock.advance(46)
    assert await world.deliver().step() == 1
    delivery = next(iter(world.database.tables["deliveries"].values()))
    assert delivery.status is DeliveryStatus.SUCCEEDED
    assert delivery.leased_by is None


async def test_rotation_signs_with_both_secrets_for_a_day(world: HookWorld) -> None:
    hook_id, old = await _one_delivery(world)
    owner = Who(world.database.tables["webhooks"][hook_id].owner_id)
    rotate = uc.RotateWebhookSecret(world.hook_uow, world.clock, world.secrets, world.cipher)
    new = await rotate.execute(owner, hook_id)
    await world.deliver().step()
    sent = world.sender.sent[0]
    assert len(sent.headers["webhook-signature"].split(" ")) == 2
    Verifier(old).verify(sent.body, sent.headers)
    Verifier(new).verify(sent.body, sent.headers)


async def test_ping_list_filter_and_redeliver(world: HookWorld) -> None:
    hook_id, _ = await _one_delivery(world)
    owner = Who(world.database.tables["webhooks"][hook_id].owner_id)
    ping = await uc.PingWebhook(world.hook_uow, world.clock, world.ids).execute(owner, hook_id)
    world.sender.answers = [SendResult(None, "timed out", None, 15000)]
    await world.deliver().step()
    listing = uc.ListDeliveries(world.hook_uow)
    page = await listing.execute(owner, hook_id, None, None, 1)
    assert [d.id for d in page.items] == [ping.id]
    assert page.next_position is not None
    rest = await listing.execute(owner, hook_id, None, page.next_position, 1)
    assert rest.next_position is None
    assert rest.items[0].event_type == "task.created"
    pending = await listing.execute(owner, hook_id, "pending", None)
    assert len(pending.items) == 1
    with pytest.raises(Invalid):
        await listing.execute(owner, hook_id, "lost", None)
    again = await uc.RedeliverDelivery(world.hook_uow, world.clock).execute(
        owner, hook_id, pending.items[0].id
    )
    assert again.next_attempt_at == world.clock.now()
    await world.deliver().step()
    ids = {s.headers["webhook-id"] for s in world.sender.sent if b"webhook.ping" not in s.body}
    assert len(ids) == 1


async def test_reencrypt_moves_secrets_to_the_first_key(world: HookWorld) -> None:
    from adapters.security.crypto import FernetCipher
    from tests.unit.webhooks.support import KEY

    hook_id, secret = await _one_delivery(world)
    new_key = FernetCipher.generate_key()
    both = FernetCipher(f"{new_key},{KEY}")
    assert await uc.ReencryptWebhookSecrets(world.hook_uow, both).execute() == 1
    stored = world.database.tables["webhooks"][hook_id].secret
    assert FernetCipher(new_key).decrypt(stored) == secret


async def test_a_secret_under_a_removed_key_fails_the_attempt_without_sending(
    world: HookWorld,
) -> None:
    from adapters.security.crypto import FernetCipher

    hook_id, _ = await _one_delivery(world)
    world.cipher = FernetCipher(FernetCipher.generate_key())  # the old key is gone
    await world.deliver().step()
    assert world.sender.sent == []
    delivery = next(iter(world.database.tables["deliveries"].values()))
    owner = Who(world.database.tables["webhooks"][hook_id].owner_id)
    _, attempts = await uc.GetDelivery(world.hook_uow).execute(owner, hook_id, delivery.id)
    assert [a.error for a in attempts] == [uc.UNREADABLE_SECRET]
    assert delivery.status is DeliveryStatus.PENDING


async def test_an_owner_who_left_the_project_gets_nothing(world: HookWorld) -> None:
    alice = world.user("alice")
    project = world.project()
    world.join(project, alice, Role.OWNER)
    await _create(world, Who(alice.id))
    _event(world, project.id)
    await world.fan_out().step()
    del world.database.tables["memberships"][f"{project.id}/{alice.id}"]
    await world.deliver().step()
    assert world.sender.sent == []
    delivery = next(iter(world.database.tables["deliveries"].values()))
    assert delivery.status is DeliveryStatus.FAILED


def test_the_prometheus_monitor_exports_attempts_and_the_backlog() -> None:
    from datetime import UTC, datetime

    from prometheus_client import REGISTRY

    from adapters.http.metrics import PrometheusDeliveryMonitor
    from domain.ports.webhooks import DeliveryBacklog

    def value(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    before = value("taskhub_webhook_attempts_total", outcome="blocked")
    monitor = PrometheusDeliveryMonitor()
    monitor.attempted("blocked")
    now = datetime(2026, 1, 1, 12, 0, 30, tzinfo=UTC)
    monitor.backlog(DeliveryBacklog(7, datetime(2026, 1, 1, 12, 0, tzinfo=UTC), 2), now)
    assert value("taskhub_webhook_attempts_total", outcome="blocked") == before + 1
    assert value("taskhub_webhook_deliveries_pending") == 7
    assert value("taskhub_webhook_delivery_lag_seconds") == 30
    assert value("taskhub_webhooks_disabled") == 2
    monitor.backlog(DeliveryBacklog(0, None, 0), now)
    assert value("taskhub_webhook_delivery_lag_seconds") == 0


async def test_the_delivery_purge_keeps_pending_and_recent_ones(world: HookWorld) -> None:
    await _one_delivery(world)
    purge = uc.PurgeFinishedDeliveries(
        world.hook_uow, world.clock, retention=timedelta(days=30), batch_size=10
    )
    world.clock.advance(31 * 86400)
    assert await purge.step() == 0  # still pending
    await world.deliver().step()
    assert await purge.step() == 0  # finished just now
    world.clock.advance(31 * 86400)
    assert await purge.step() == 1
    assert world.database.tables["deliveries"] == {}
    assert world.database.tables["webhook_attempts"] == {}


async def test_a_delivery_step_reads_each_webhook_and_membership_once(
    world: HookWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    from adapters.memory.projects import MemoryMembershipRepository
    from adapters.memory.webhooks import MemoryWebhookRepository

    alice, bob = world.user("alice"), world.user("bob")
    project = world.project()
    world.join(project, alice, Role.OWNER)
    world.join(project, bob, Role.EDITOR)
    first = (await _create(world, Who(alice.id))).webhook
    second = (await _create(world, Who(alice.id))).webhook
    bobs = (await _create(world, Who(bob.id))).webhook
    for _ in range(3):
        _event(world, project.id)
    await world.fan_out().step()
    del world.database.tables["memberships"][f"{project.id}/{bob.id}"]
    reads: list[str] = []
    hook_get, member_get = MemoryWebhookRepository.get, MemoryMembershipRepository.get

    async def get_hook(self: Any, webhook_id: str, *, for_update: bool = False) -> Any:
        reads.append("webhook" if not for_update else "webhook for update")
        return await hook_get(self, webhook_id, for_update=for_update)

    async def get_member(self: Any, project_id: str, user_id: str) -> Any:
        reads.append("membership")
        return await member_get(self, project_id, user_id)

    monkeypatch.setattr(MemoryWebhookRepository, "get", get_hook)
    monkeypatch.setattr(MemoryMembershipRepository, "get", get_member)
    assert await world.deliver().step() == 9
    assert sorted(reads) == ["membership"] * 2 + ["webhook"] * 3 + ["webhook for update"] * 2
    assert sorted(json.loads(s.body)["type"] for s in world.sender.sent) == ["task.created"] * 6
    statuses = {(d.webhook_id, d.status) for d in world.database.tables["deliveries"].values()}
    assert statuses == {
        (first.id, DeliveryStatus.SUCCEEDED),
        (second.id, DeliveryStatus.SUCCEEDED),
        (bobs.id, DeliveryStatus.FAILED),  # bob left the project: marked failed, never sent
    }


async def test_a_delivery_step_decrypts_each_secret_once_and_reads_the_backlog_now_and_then(
    world: HookWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    hook_id, _ = await _one_delivery(world)
    owner = Who(world.database.tables["webhooks"][hook_id].owner_id)
    ping = uc.PingWebhook(world.hook_uow, world.clock, world.ids)
    decrypted: list[str] = []
    decrypt = world.cipher.decrypt

    def counted(sealed: str) -> str:
        decrypted.append(sealed)
        return decrypt(sealed)

    monkeypatch.setattr(world.cipher, "decrypt", counted)
    deliver = world.deliver()
    for _ in range(3):
        await ping.execute(owner, hook_id)
    assert await deliver.step() == 4
    assert len(decrypted) == 1  # one webhook, one secret: once for the batch
    assert [b.pending for b in world.monitor.backlogs] == [4]  # read while the batch is leased
    await ping.execute(owner, hook_id)
    world.clock.advance(uc.BACKLOG_EVERY.total_seconds() - 1)
    assert await deliver.step() == 1
    assert len(world.monitor.backlogs) == 1  # not due again yet
    world.clock.advance(1)
    assert await deliver.step() == 0
    assert [b.pending for b in world.monitor.backlogs] == [4, 0]
    assert len(world.sender.sent) == 5
