"""Webhook use cases: manage subscriptions, list deliveries, and the two worker jobs (fan-out of
the change feed into deliveries, and delivery under per-delivery leases). One transaction per
call; the delivery job never holds a transaction across an outbound POST.

A user sees and manages only their own webhooks: another user's webhook is `NotFound`. Every
call needs the `webhooks:manage` scope.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from domain.access import Caller, is_restricted, reaches, require_scope
from domain.auth import Scope
from domain.errors import Conflict, Invalid, LimitReached, NotFound, PreconditionFailed
from domain.ports import Clock, IdGenerator
from domain.ports.feed import ChangeFeed
from domain.ports.identity import Cipher
from domain.ports.webhooks import (
    DeliveryMonitor,
    DeliveryPosition,
    WebhookSecrets,
    WebhookSender,
    WebhookUnitOfWork,
    WebhookUnitOfWorkFactory,
)
from domain.tasks import is_task_id
from domain.webhooks import (
    PING_EVENT,
    Attempt,
    Delivery,
    DeliveryRules,
    DeliveryStatus,
    SendResult,
    TargetPolicy,
    Webhook,
    WebhookDraft,
    after_attempt,
    apply_webhook_changes,
    delivery_headers,
    event_payload,
    new_delivery,
    new_webhook,
    payload,
    redeliver,
    rotate_secret,
)

DEFAULT_DELIVERY_PAGE = 50
MAX_DELIVERY_PAGE = 200
MAX_WEBHOOKS_PER_USER = 100
# How often a delivery worker reads the backlog for its gauges (a count over every pending
# delivery): often enough for an alert on minutes of lag, rarely enough to cost nothing per step.
BACKLOG_EVERY = timedelta(seconds=15)
UNREADABLE_SECRET = "the signing secret cannot be decrypted with ENCRYPTION_KEY"  # noqa: S105


def _not_found(webhook_id: str) -> NotFound:
    return NotFound(f"webhook {webhook_id!r} not found")


def _delivery_not_found(delivery_id: str) -> NotFound:
    return NotFound(f"delivery {delivery_id!r} not found")


async def _own(
    uow: WebhookUnitOfWork, caller: Caller, webhook_id: str, *, lock: bool = False
) -> Webhook:
    if not is_task_id(webhook_id):
        raise _not_found(webhook_id)
    webhook = await uow.webhooks.get(webhook_id, for_update=lock)
    if webhook is None or webhook.owner_id != caller.user_id:
        raise _not_found(webhook_id)
    return webhook


async def _check_project(uow: WebhookUnitOfWork, caller: Caller, project_id: str | None) -> None:
    """A webhook's project must be one the caller can read (and its key reach); a key limited
    to projects must name one of them. `Invalid` on `project_id` otherwise."""
    if project_id is None:
        if is_restricted(caller):
            raise Invalid.of("project_id", "a key limited to projects must name one of them")
        return
    membership = await uow.memberships.get(project_id, caller.user_id)
    if membership is None or not reaches(caller, project_id):
        raise Invalid.of("project_id", "is not a project you can read")


def _check_version(webhook: Webhook, expected_version: int | None) -> None:
    if expected_version is not None and expected_version != webhook.version:
        raise PreconditionFailed(
            f"version {expected_version} is stale; the webhook is at version {webhook.version}"
        )


@dataclass(frozen=True, slots=True)
class CreatedWebhook:
    webhook: Webhook
    secret: str  # plaintext, shown once


class CreateWebhook:
    def __init__(
        self,
        uow_factory: WebhookUnitOfWorkFactory,
        clock: Clock,
        ids: IdGenerator,
        secrets: WebhookSecrets,
        cipher: Cipher,
        policy: TargetPolicy,
        *,
        max_webhooks: int = MAX_WEBHOOKS_PER_USER,
    ) -> None:
        self._uow_factory, self._clock, self._ids = uow_factory, clock, ids
        self._secrets, self._cipher, self._policy = secrets, cipher, policy
        self._max = max_webhooks

    async def execute(self, caller: Caller, draft: WebhookDraft) -> CreatedWebhook:
        require_scope(caller, Scope.WEBHOOKS_MANAGE)
        secret = self._secrets.webhook_secret()
        webhook = new_webhook(
            webhook_id=self._ids.new_id(),
            owner_id=caller.user_id,
            draft=draft,
            secret=self._cipher.encrypt(secret),
            policy=self._policy,
            now=self._clock.now(),
        )
        async with self._uow_factory() as uow:
            await _check_project(uow, caller, webhook.project_id)
            if await uow.webhooks.count_for_owner(caller.user_id) >= self._max:
                raise LimitReached(f"a user may have at most {self._max} webhooks")
            await uow.webhooks.add(webhook)
            await uow.commit()
        return CreatedWebhook(webhook, secret)


class ListWebhooks:
    def __init__(self, uow_factory: WebhookUnitOfWorkFactory) -> None:
        self._uow_factory = uow_factory

    async def execute(self, caller: Caller) -> list[Webhook]:
        require_scope(caller, Scope.WEBHOOKS_MANAGE)
        async with self._uow_factory() as uow:
            return await uow.webhooks.list_for_owner(caller.user_id)


class GetWebhook:
    def __init__(self, uow_factory: WebhookUnitOfWorkFactory) -> None:
        self._uow_factory = uow_factory

    async def execute(self, caller: Caller, webhook_id: str) -> Webhook:
        require_scope(caller, Scope.WEBHOOKS_MANAGE)
        async with self._uow_factory() as uow:
            return await _own(uow, caller, webhook_id)


class UpdateWebhook:
    def __init__(
        self, uow_factory: WebhookUnitOfWorkFactory, clock: Clock, policy: TargetPolicy
    ) -> None:
        self._uow_factory, self._clock, self._policy = uow_factory, clock, policy

    async def execute(
        self,
        caller: Caller,
        webhook_id: str,
        changes: Mapping[str, object],
        expected_version: int | None = None,
    ) -> Webhook:
        """A merge patch; 412 on a stale `expected_version`, `Conflict` when another writer
        changed it meanwhile."""
        require_scope(caller, Scope.WEBHOOKS_MANAGE)
        async with self._uow_factory() as uow:
            webhook = await _own(uow, caller, webhook_id)
            _check_version(webhook, expected_version)
            changed = apply_webhook_changes(webhook, changes, self._policy, self._clock.now())
            if changed is webhook:
                return webhook
            if "project_id" in changes:
                await _check_project(uow, caller, changed.project_id)
            if not await uow.webhooks.update(changed, webhook.version):
                raise Conflict("the webhook was changed meanwhile; read it again and retry")
            await uow.commit()
        return changed


class DeleteWebhook:
    def __init__(self, uow_factory: WebhookUnitOfWorkFactory) -> None:
        self._uow_factory = uow_factory

    async def execute(
        self, caller: Caller, webhook_id: str, expected_version: int | None = None
    ) -> None:
        require_scope(caller, Scope.WEBHOOKS_MANAGE)
        async with self._uow_factory() as uow:
            webhook = await _own(uow, caller, webhook_id, lock=True)
            _check_version(webhook, expected_version)
            await uow.webhooks.delete(webhook.id)
            await uow.commit()


class RotateWebhookSecret:
    def __init__(
        self,
        uow_factory: WebhookUnitOfWorkFactory,
        clock: Clock,
        secrets: WebhookSecrets,
        cipher: Cipher,
    ) -> None:
        self._uow_factory, self._clock = uow_factory, clock
        self._secrets, self._cipher = secrets, cipher

    async def execute(self, caller: Caller, webhook_id: str) -> str:
        """The new secret (plaintext, shown once); the old one also signs for 24 h."""
        require_scope(caller, Scope.WEBHOOKS_MANAGE)
        secret = self._secrets.webhook_secret()
        async with self._uow_factory() as uow:
            webhook = await _own(uow, caller, webhook_id, lock=True)
            rotated = rotate_secret(webhook, self._cipher.encrypt(secret), self._clock.now())
            if not await uow.webhooks.update(rotated, webhook.version):
                raise Conflict("the webhook was changed meanwhile; retry")
            await uow.commit()
        return secret


class PingWebhook:
    def __init__(
        self, uow_factory: WebhookUnitOfWorkFactory, clock: Clock, ids: IdGenerator
    ) -> None:
        self._uow_factory, self._clock, self._ids = uow_factory, clock, ids

    async def execute(self, caller: Caller, webhook_id: str) -> Delivery:
        """A `webhook.ping` delivery, due at once. A disabled webhook is a `Conflict`."""
        require_scope(caller, Scope.WEBHOOKS_MANAGE)
        now = self._clock.now()
        async with self._uow_factory() as uow:
            webhook = await _own(uow, caller, webhook_id)
            if not webhook.enabled:
                raise Conflict("the webhook is disabled; enable it first")
            event_id = self._ids.new_id()
            data = {"id": event_id, "type": PING_EVENT, "webhook_id": webhook.id}
            delivery = new_delivery(
                delivery_id=self._ids.new_id(),
                webhook_id=webhook.id,
                event_id=event_id,
                event_type=PING_EVENT,
                project_id=None,
                body=payload(PING_EVENT, now, data),
                now=now,
            )
            await uow.deliveries.add(delivery)
            await uow.commit()
        return delivery


@dataclass(frozen=True, slots=True)
class DeliveryPage:
    items: list[Delivery]
    next_position: DeliveryPosition | None


class ListDeliveries:
    def __init__(self, uow_factory: WebhookUnitOfWorkFactory) -> None:
        self._uow_factory = uow_factory

    async def execute(
        self,
        caller: Caller,
        webhook_id: str,
        status: str | None,
        before: DeliveryPosition | None,
        limit: int = DEFAULT_DELIVERY_PAGE,
    ) -> DeliveryPage:
        require_scope(caller, Scope.WEBHOOKS_MANAGE)
        if not 1 <= limit <= MAX_DELIVERY_PAGE:
            raise Invalid.of("limit", f"must be between 1 and {MAX_DELIVERY_PAGE}")
        wanted: DeliveryStatus | None = None
        if status is not None:
            try:
                wanted = DeliveryStatus(status)
            except ValueError:
                raise Invalid.of("status", "must be pending, succeeded or failed") from None
        async with self._uow_factory() as uow:
            await _own(uow, caller, webhook_id)
            rows = await uow.deliveries.page(webhook_id, wanted, before, limit=limit + 1)
        items = rows[:limit]
        more = len(rows) > limit
        last = items[-1] if items else None
        position = DeliveryPosition(last.created_at, last.id) if more and last else None
        return DeliveryPage(items, position)


class GetDelivery:
    def __init__(self, uow_factory: WebhookUnitOfWorkFactory) -> None:
        self._uow_factory = uow_factory

    async def execute(
        self, caller: Caller, webhook_id: str, delivery_id: str
    ) -> tuple[Delivery, list[Attempt]]:
        require_scope(caller, Scope.WEBHOOKS_MANAGE)
        async with self._uow_factory() as uow:
            await _own(uow, caller, webhook_id)
            delivery = await _delivery(uow, webhook_id, delivery_id)
            return delivery, await uow.deliveries.attempts(delivery.id)


async def _delivery(uow: WebhookUnitOfWork, webhook_id: str, delivery_id: str) -> Delivery:
    delivery = await uow.deliveries.get(delivery_id) if is_task_id(delivery_id) else None
    if delivery is None or delivery.webhook_id != webhook_id:
        raise _delivery_not_found(delivery_id)
    return delivery


class RedeliverDelivery:
    def __init__(self, uow_factory: WebhookUnitOfWorkFactory, clock: Clock) -> None:
        self._uow_factory, self._clock = uow_factory, clock

    async def execute(self, caller: Caller, webhook_id: str, delivery_id: str) -> Delivery:
        """The delivery due again at once (same id, so the same `webhook-id`). A disabled
        webhook, or a delivery an attempt is running for, is a `Conflict`."""
        require_scope(caller, Scope.WEBHOOKS_MANAGE)
        now = self._clock.now()
        async with self._uow_factory() as uow:
            webhook = await _own(uow, caller, webhook_id, lock=True)
            if not webhook.enabled:
                raise Conflict("the webhook is disabled; enable it first")
            delivery = await _delivery(uow, webhook_id, delivery_id)
            if delivery.leased_until is not None and delivery.leased_until > now:
                raise Conflict("an attempt of this delivery is running; retry shortly")
            again = redeliver(delivery, now)
            await uow.deliveries.update_many([again])
            await uow.commit()
        return again


# --- worker jobs ---------------------------------------------------------------------------------


class FanOutEvents:
    """Walks the change feed from the stored position and turns each event into deliveries for
    the webhooks that want it, advancing the position in the same transaction (each event is
    fanned out exactly once, also when two runners race: the loser's transaction is refused)."""

    def __init__(
        self,
        uow_factory: WebhookUnitOfWorkFactory,
        feed: ChangeFeed,
        clock: Clock,
        ids: IdGenerator,
        *,
        batch_size: int,
    ) -> None:
        self._uow_factory, self._feed, self._clock, self._ids = uow_factory, feed, clock, ids
        self._batch = batch_size

    async def step(self) -> int:
        """Fan out one batch of events; how many events were read."""
        async with self._uow_factory() as uow:
            position = await uow.feed_position.get()
            # The feed's end is taken before the webhooks are read: with none enabled, the
            # events up to it concern nobody (a webhook made later gets only later events), so
            # the position moves there without reading them.
            end = await self._feed.now()
            hooks = await uow.webhooks.enabled()
            if hooks:
                items, next_position = await self._feed.read_after(position, self._batch)
            else:
                items, next_position = [], end
            if not items and next_position == position:
                return 0
            now = self._clock.now()
            readers: dict[tuple[str, str], bool] = {}
            created: list[Delivery] = []
            for item in items:
                for hook in hooks:
                    if not hook.receives(item.type, item.project_id, item.occurred_at):
                        continue
                    assert item.project_id is not None  # (receives() says so)
                    key = (item.project_id, hook.owner_id)
                    if key not in readers:
                        member = await uow.memberships.get(item.project_id, hook.owner_id)
                        readers[key] = member is not None
                    if not readers[key]:
                        continue
                    created.append(
                        new_delivery(
                            delivery_id=self._ids.new_id(),
                            webhook_id=hook.id,
                            event_id=item.event_id,
                            event_type=item.type,
                            project_id=item.project_id,
                            body=event_payload(item),
                            now=now,
                        )
                    )
            await uow.deliveries.add_many(created)
            if not await uow.feed_position.advance(position, next_position):
                await uow.rollback()
                return 0
            await uow.commit()
        return len(items)


class DeliverWebhooks:
    """One step: lease a batch of due deliveries (one short transaction), POST them
    concurrently with no transaction open, then record every attempt and its consequences in
    one transaction of their own. A worker that dies mid-attempt leaves the lease to run out;
    the delivery is then claimed again and retried with the same `webhook-id`.

    The statements of a step do not grow with the batch: each webhook and each (project, owner)
    membership is read once, the batch's deliveries are read, their attempts inserted and the
    changed ones written once each. The backlog (a count over the pending deliveries) is read
    at most once per `backlog_every`, not every step."""

    def __init__(
        self,
        uow_factory: WebhookUnitOfWorkFactory,
        sender: WebhookSender,
        cipher: Cipher,
        clock: Clock,
        ids: IdGenerator,
        monitor: DeliveryMonitor,
        rules: DeliveryRules,
        *,
        holder: str,
        lease: timedelta,
        batch_size: int,
        backlog_every: timedelta = BACKLOG_EVERY,
    ) -> None:
        self._uow_factory, self._sender, self._cipher = uow_factory, sender, cipher
        self._clock, self._ids, self._monitor = clock, ids, monitor
        self._rules, self._holder, self._lease, self._batch = rules, holder, lease, batch_size
        self._backlog_every = backlog_every
        self._backlog_read_at: datetime | None = None

    async def step(self) -> int:
        now = self._clock.now()
        async with self._uow_factory() as uow:
            claimed = await uow.deliveries.claim(now, self._holder, now + self._lease, self._batch)
            work: list[tuple[Delivery, Webhook]] = []
            refused: list[Delivery] = []
            hooks: dict[str, Webhook | None] = {}
            readers: dict[tuple[str, str], bool] = {}
            for delivery in claimed:
                if delivery.webhook_id not in hooks:
                    hooks[delivery.webhook_id] = await uow.webhooks.get(delivery.webhook_id)
                hook = hooks[delivery.webhook_id]
                if hook is None:
                    continue
                if delivery.project_id is not None:
                    key = (delivery.project_id, hook.owner_id)
                    if key not in readers:
                        readers[key] = await uow.memberships.get(*key) is not None
                    if not readers[key]:
                        refused.append(_no_access(delivery, now))
                        continue
                work.append((delivery, hook))
            await uow.deliveries.update_many(refused)
            await uow.commit()
            backlog = await uow.deliveries.backlog() if self._backlog_due(now) else None
        if backlog is not None:
            self._monitor.backlog(backlog, now)
        if work:
            # Each webhook's secrets are decrypted once per step (Fernet is not free).
            targets = {hook.id: hook for _, hook in work}
            secrets = {hook_id: self._secrets(hook, now) for hook_id, hook in targets.items()}
            outcomes = await asyncio.gather(*(self._attempt(d, h, secrets[h.id]) for d, h in work))
            await self._record(outcomes)
        return len(claimed)

    def _backlog_due(self, now: datetime) -> bool:
        """Whether to read the backlog this step: at the first step, then once `backlog_every`
        has passed since the last reading."""
        last = self._backlog_read_at
        if last is not None and now - last < self._backlog_every:
            return False
        self._backlog_read_at = now
        return True

    async def _attempt(
        self, delivery: Delivery, hook: Webhook, secrets: list[str]
    ) -> tuple[Delivery, SendResult, datetime]:
        started = self._clock.now()
        timestamp = int(started.timestamp())
        if secrets:
            headers = delivery_headers(secrets, delivery.id, timestamp, delivery.payload)
            result = await self._sender.send(hook.url, headers, delivery.payload.encode())
        else:
            result = SendResult(None, UNREADABLE_SECRET, None, 0)
        self._monitor.attempted(
            "success"
            if result.succeeded
            else "blocked"
            if result.error == "blocked address"
            else "failure"
        )
        return delivery, result, started

    def _secrets(self, hook: Webhook, now: datetime) -> list[str]:
        """The plaintext signing secrets; none when the current one cannot be decrypted (a key
        removed from ENCRYPTION_KEY too early), and without a previous one that cannot."""
        readable = []
        for index, sealed in enumerate(hook.signing_secrets(now)):
            try:
                readable.append(self._cipher.decrypt(sealed))
            except ValueError:
                if index == 0:
                    return []
        return readable

    async def _record(self, outcomes: list[tuple[Delivery, SendResult, datetime]]) -> None:
        """Every attempt of the batch and what it did to its delivery and webhook, in one
        transaction (webhooks locked in id order, so two workers never deadlock). A delivery
        whose lease another worker took over meanwhile keeps its state; the attempt is kept."""
        now = self._clock.now()
        async with self._uow_factory() as uow:
            hooks: dict[str, Webhook | None] = {}
            for hook_id in sorted({d.webhook_id for d, _, _ in outcomes}):
                hooks[hook_id] = await uow.webhooks.get(hook_id, for_update=True)
            stored = {hook_id: hook for hook_id, hook in hooks.items() if hook is not None}
            current = {
                d.id: d for d in await uow.deliveries.get_many([d.id for d, _, _ in outcomes])
            }
            attempts: list[Attempt] = []
            changed: list[Delivery] = []
            for claimed, result, started in outcomes:
                hook = hooks.get(claimed.webhook_id)
                delivery = current.get(claimed.id)
                if hook is None or delivery is None:
                    continue  # deleted meanwhile
                attempts.append(
                    Attempt(
                        id=self._ids.new_id(),
                        delivery_id=delivery.id,
                        attempted_at=started,
                        duration_ms=result.duration_ms,
                        response_status=result.status,
                        error=result.error,
                        response_body=result.body,
                    )
                )
                if delivery.leased_by == self._holder and delivery.status is DeliveryStatus.PENDING:
                    done, hooks[hook.id] = after_attempt(delivery, hook, result, self._rules, now)
                    changed.append(done)
            await uow.deliveries.add_attempts(attempts)
            await uow.deliveries.update_many(changed)
            for hook_id, before in stored.items():
                after = hooks[hook_id]
                if after is not None and after != before:
                    await uow.webhooks.update(after, before.version)
            await uow.commit()


def _no_access(delivery: Delivery, now: datetime) -> Delivery:
    return replace(
        delivery,
        status=DeliveryStatus.FAILED,
        next_attempt_at=None,
        updated_at=now,
        leased_by=None,
        leased_until=None,
    )


class PurgeFinishedDeliveries:
    """Deliveries that succeeded or failed more than `retention` ago leave the delivery log
    with their attempts, `batch_size` at a time (a worker job step)."""

    def __init__(
        self,
        uow_factory: WebhookUnitOfWorkFactory,
        clock: Clock,
        *,
        retention: timedelta,
        batch_size: int,
    ) -> None:
        if batch_size < 1 or retention <= timedelta(0):
            raise ValueError("a purge needs batch_size >= 1 and a positive retention")
        self._uow_factory, self._clock = uow_factory, clock
        self._retention, self._batch = retention, batch_size

    async def step(self) -> int:
        before = self._clock.now() - self._retention
        async with self._uow_factory() as uow:
            purged = await uow.deliveries.purge_finished(before, self._batch)
            await uow.commit()
        return purged


class ReencryptWebhookSecrets:
    """Re-encrypts every stored webhook secret under the cipher's first key (after a key
    rotation); the number of webhooks rewritten."""

    def __init__(self, uow_factory: WebhookUnitOfWorkFactory, cipher: Cipher) -> None:
        self._uow_factory, self._cipher = uow_factory, cipher

    async def execute(self) -> int:
        async with self._uow_factory() as uow:
            ids = await uow.webhooks.all_ids()
        count = 0
        for webhook_id in ids:
            async with self._uow_factory() as uow:
                hook = await uow.webhooks.get(webhook_id, for_update=True)
                if hook is None:
                    continue
                again = replace(
                    hook,
                    secret=self._cipher.encrypt(self._cipher.decrypt(hook.secret)),
                    previous_secret=(
                        self._cipher.encrypt(self._cipher.decrypt(hook.previous_secret))
                        if hook.previous_secret is not None
                        else None
                    ),
                )
                await uow.webhooks.update(again, hook.version)
                await uow.commit()
                count += 1
        return count
