"""In-memory twins of the webhook ports, on tables of the shared `MemoryDatabase` inside
`MemoryWebhookUnitOfWork` (the project unit of work plus these repositories). One process, one
event loop: a claim reads and leases in one go without awaiting, so it is atomic. Orders follow
`domain.ports.webhooks` exactly."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from adapters.memory.projects import MemoryProjectUnitOfWork
from adapters.memory.uow import MemoryDatabase
from domain.ports.webhooks import DeliveryBacklog, DeliveryPosition
from domain.webhooks import Attempt, Delivery, DeliveryStatus, Webhook

_FEED_ROW = "fan_out"


class MemoryWebhookRepository:
    def __init__(self, tables: dict[str, dict[str, Any]]) -> None:
        self._rows: dict[str, Webhook] = tables["webhooks"]
        self._deliveries: dict[str, Delivery] = tables["deliveries"]
        self._attempts: dict[str, Attempt] = tables["webhook_attempts"]

    async def add(self, webhook: Webhook) -> None:
        if webhook.id in self._rows:
            raise ValueError(f"webhook {webhook.id} already exists")
        self._rows[webhook.id] = webhook

    async def get(self, webhook_id: str, *, for_update: bool = False) -> Webhook | None:  # noqa: ARG002
        return self._rows.get(webhook_id)

    async def update(self, webhook: Webhook, expected_version: int) -> bool:
        stored = self._rows.get(webhook.id)
        if stored is None or stored.version != expected_version:
            return False
        self._rows[webhook.id] = webhook
        return True

    async def delete(self, webhook_id: str) -> bool:
        if self._rows.pop(webhook_id, None) is None:
            return False
        gone = {d.id for d in self._deliveries.values() if d.webhook_id == webhook_id}
        for delivery_id in gone:
            del self._deliveries[delivery_id]
        for attempt_id, attempt in list(self._attempts.items()):
            if attempt.delivery_id in gone:
                del self._attempts[attempt_id]
        return True

    async def list_for_owner(self, owner_id: str) -> list[Webhook]:
        mine = [w for w in self._rows.values() if w.owner_id == owner_id]
        return sorted(mine, key=lambda w: (w.created_at, w.id))

    async def count_for_owner(self, owner_id: str) -> int:
        return sum(1 for w in self._rows.values() if w.owner_id == owner_id)

    async def enabled(self) -> list[Webhook]:
        return sorted((w for w in self._rows.values() if w.enabled), key=lambda w: w.id)

    async def all_ids(self) -> list[str]:
        return sorted(self._rows)


class MemoryDeliveryRepository:
    def __init__(self, tables: dict[str, dict[str, Any]]) -> None:
        self._rows: dict[str, Delivery] = tables["deliveries"]
        self._attempts: dict[str, Attempt] = tables["webhook_attempts"]
        self._webhooks: dict[str, Webhook] = tables["webhooks"]

    async def add(self, delivery: Delivery) -> None:
        self._rows[delivery.id] = delivery

    async def add_many(self, deliveries: Sequence[Delivery]) -> None:
        for delivery in deliveries:
            self._rows[delivery.id] = delivery

    async def get(self, delivery_id: str) -> Delivery | None:
        return self._rows.get(delivery_id)

    async def get_many(self, delivery_ids: Sequence[str]) -> list[Delivery]:
        return [self._rows[i] for i in dict.fromkeys(delivery_ids) if i in self._rows]

    async def update_many(self, deliveries: Sequence[Delivery]) -> None:
        for delivery in deliveries:
            if delivery.id in self._rows:
                self._rows[delivery.id] = delivery

    async def page(
        self,
        webhook_id: str,
        status: DeliveryStatus | None,
        before: DeliveryPosition | None,
        *,
        limit: int,
    ) -> list[Delivery]:
        rows = [
            d
            for d in self._rows.values()
            if d.webhook_id == webhook_id
            and (status is None or d.status is status)
            and (before is None or (d.created_at, d.id) < (before.created_at, before.id))
        ]
        rows.sort(key=lambda d: (d.created_at, d.id), reverse=True)
        return rows[:limit]

    async def claim(
        self, now: datetime, holder: str, until: datetime, limit: int
    ) -> list[Delivery]:
        due = [
            d
            for d in self._rows.values()
            if d.status is DeliveryStatus.PENDING
            and d.next_attempt_at is not None
            and d.next_attempt_at <= now
            and (d.leased_until is None or d.leased_until <= now)
            and (hook := self._webhooks.get(d.webhook_id)) is not None
            and hook.enabled
        ]
        due.sort(key=lambda d: (d.next_attempt_at or now, d.id))
        claimed = [replace(d, leased_by=holder, leased_until=until) for d in due[:limit]]
        for delivery in claimed:
            self._rows[delivery.id] = delivery
        return claimed

    async def add_attempts(self, attempts: Sequence[Attempt]) -> None:
        for attempt in attempts:
            self._attempts[attempt.id] = attempt

    async def attempts(self, delivery_id: str) -> list[Attempt]:
        mine = [a for a in self._attempts.values() if a.delivery_id == delivery_id]
        return sorted(mine, key=lambda a: (a.attempted_at, a.id))

    async def backlog(self) -> DeliveryBacklog:
        pending = [d for d in self._rows.values() if d.status is DeliveryStatus.PENDING]
        due = [d.next_attempt_at for d in pending if d.next_attempt_at is not None]
        disabled = sum(1 for w in self._webhooks.values() if not w.enabled)
        return DeliveryBacklog(len(pending), min(due) if due else None, disabled)

    async def purge_finished(self, before: datetime, limit: int) -> int:
        gone = sorted(
            (
                d
                for d in self._rows.values()
                if d.status is not DeliveryStatus.PENDING and d.updated_at < before
            ),
            key=lambda d: (d.updated_at, d.id),
        )[:limit]
        ids = {d.id for d in gone}
        for delivery_id in ids:
            del self._rows[delivery_id]
        for attempt_id, attempt in list(self._attempts.items()):
            if attempt.delivery_id in ids:
                del self._attempts[attempt_id]
        return len(ids)


class MemoryFeedPosition:
    def __init__(self, tables: dict[str, dict[str, Any]]) -> None:
        self._rows: dict[str, str] = tables["webhook_feed"]

    async def get(self) -> str | None:
        return self._rows.get(_FEED_ROW)

    async def advance(self, expected: str | None, position: str) -> bool:
        if self._rows.get(_FEED_ROW) != expected:
            return False
        self._rows[_FEED_ROW] = position
        return True


class MemoryWebhookUnitOfWork(MemoryProjectUnitOfWork):
    """The project unit of work with the webhook repositories too (same snapshot and commit).
    A unit that moved the fan-out position commits only when nobody moved it since the unit
    began (else it rolls back), like the SQL compare-and-set."""

    webhooks: MemoryWebhookRepository
    deliveries: MemoryDeliveryRepository
    feed_position: MemoryFeedPosition

    def _bind(self) -> None:
        super()._bind()
        self.webhooks = MemoryWebhookRepository(self._work)
        self.deliveries = MemoryDeliveryRepository(self._work)
        self.feed_position = MemoryFeedPosition(self._work)

    async def commit(self) -> None:
        before = self._snapshot.get("webhook_feed", {}).get(_FEED_ROW)
        moved = self._work.get("webhook_feed", {}).get(_FEED_ROW) != before
        if moved and self._database.tables["webhook_feed"].get(_FEED_ROW) != before:
            await self.rollback()
            return
        await super().commit()


if TYPE_CHECKING:
    from domain.ports.webhooks import WebhookUnitOfWorkFactory

    # Type-checked only: the twin implements the port.
    _twin: WebhookUnitOfWorkFactory = lambda: MemoryWebhookUnitOfWork(MemoryDatabase())  # noqa: E731
