"""Ports of webhooks: subscriptions, durable deliveries with their attempts, the fan-out's stored
feed position, the unit of work that reaches them (with memberships, for the access rule), the
outbound sender, and what the delivery job reports for monitoring.

Orders every adapter reproduces exactly:
- webhooks of a user: oldest first, (created_at, id) ascending;
- deliveries of a webhook: newest first, (created_at, id) descending, keyset before a
  `DeliveryPosition`;
- attempts of a delivery: oldest first, (attempted_at, id) ascending.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from domain.ports import UnitOfWorkBase
from domain.ports.projects import MembershipRepository
from domain.webhooks import Attempt, Delivery, DeliveryStatus, SendResult, Webhook


@dataclass(frozen=True, slots=True)
class DeliveryPosition:
    """Where a page of deliveries ended: the last delivery's (created_at, id)."""

    created_at: datetime
    id: str


@dataclass(frozen=True, slots=True)
class DeliveryBacklog:
    """What is waiting: pending deliveries, the oldest due time among them (None when none),
    and how many webhooks are disabled."""

    pending: int
    oldest_due_at: datetime | None
    disabled_webhooks: int


class WebhookRepository(Protocol):
    async def add(self, webhook: Webhook) -> None: ...

    async def get(self, webhook_id: str, *, for_update: bool = False) -> Webhook | None:
        """The webhook, or None; `for_update` locks its row until the transaction ends."""
        ...

    async def update(self, webhook: Webhook, expected_version: int) -> bool:
        """Store `webhook` if the stored one is at `expected_version`; False otherwise."""
        ...

    async def delete(self, webhook_id: str) -> bool:
        """Delete the webhook with its deliveries and their attempts."""
        ...

    async def list_for_owner(self, owner_id: str) -> list[Webhook]:
        """The user's webhooks, oldest first (created_at, then id)."""
        ...

    async def count_for_owner(self, owner_id: str) -> int: ...

    async def enabled(self) -> list[Webhook]:
        """Every enabled webhook (the fan-out matches each event against them)."""
        ...

    async def all_ids(self) -> list[str]:
        """Every webhook's id (re-encrypting the secrets walks them)."""
        ...


class DeliveryRepository(Protocol):
    async def add(self, delivery: Delivery) -> None: ...

    async def add_many(self, deliveries: Sequence[Delivery]) -> None:
        """Insert the deliveries (one write for the lot). Each reads back with its payload as
        given; an adapter may keep it by reference to its event (`event_payload`)."""
        ...

    async def get(self, delivery_id: str) -> Delivery | None: ...

    async def get_many(self, delivery_ids: Sequence[str]) -> list[Delivery]:
        """The deliveries among `delivery_ids` that exist, in no particular order."""
        ...

    async def update_many(self, deliveries: Sequence[Delivery]) -> None:
        """Store each delivery's status, attempts, schedule and lease as given (one write for
        the lot; a delivery no longer stored is skipped)."""
        ...

    async def page(
        self,
        webhook_id: str,
        status: DeliveryStatus | None,
        before: DeliveryPosition | None,
        *,
        limit: int,
    ) -> list[Delivery]:
        """At most `limit` deliveries of the webhook, newest first, strictly before `before`,
        only those in `status` when given."""
        ...

    async def claim(
        self, now: datetime, holder: str, until: datetime, limit: int
    ) -> list[Delivery]:
        """Lease up to `limit` pending deliveries that are due at `now`, whose webhook is
        enabled and that no unexpired lease holds, to `holder` until `until`, oldest due first.
        Atomic across processes: two claimers never get the same delivery."""
        ...

    async def add_attempts(self, attempts: Sequence[Attempt]) -> None:
        """Insert the attempts (one write for the lot)."""
        ...

    async def attempts(self, delivery_id: str) -> list[Attempt]:
        """The delivery's attempts, oldest first."""
        ...

    async def backlog(self) -> DeliveryBacklog: ...

    async def purge_finished(self, before: datetime, limit: int) -> int:
        """Delete up to `limit` deliveries that succeeded or failed and last changed before
        `before`, with their attempts; how many deliveries went."""
        ...


class FeedPosition(Protocol):
    """The fan-out's place in the change feed (one stored row)."""

    async def get(self) -> str | None: ...

    async def advance(self, expected: str | None, position: str) -> bool:
        """Move from `expected` to `position`; False when the stored one is not `expected`
        (another fan-out moved it first)."""
        ...


class WebhookUnitOfWork(UnitOfWorkBase, Protocol):
    """One transaction over webhooks, deliveries, the fan-out position and memberships."""

    @property
    def webhooks(self) -> WebhookRepository: ...

    @property
    def deliveries(self) -> DeliveryRepository: ...

    @property
    def feed_position(self) -> FeedPosition: ...

    @property
    def memberships(self) -> MembershipRepository: ...


type WebhookUnitOfWorkFactory = Callable[[], WebhookUnitOfWork]


class WebhookSecrets(Protocol):
    def webhook_secret(self) -> str:
        """A new secret: `whsec_` and the base64 of 32 random bytes."""
        ...


class WebhookSender(Protocol):
    """Outbound POSTs under the egress rules (connect-time address checks, no redirects, a cap
    on the body read, a time limit). Never raises for the receiver's or the network's faults:
    they come back as a `SendResult` with an error."""

    async def send(self, url: str, headers: Mapping[str, str], body: bytes) -> SendResult: ...


class DeliveryMonitor(Protocol):
    """What the delivery job reports (metrics)."""

    def attempted(self, outcome: str) -> None:
        """One attempt ended: `success`, `failure` or `blocked`."""
        ...

    def backlog(self, backlog: DeliveryBacklog, now: datetime) -> None: ...
