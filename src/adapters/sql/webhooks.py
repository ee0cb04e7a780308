"""The webhook repositories over one SQLAlchemy connection (PostgreSQL or SQLite), inside the
unit of work's transaction. A claim selects due deliveries (PostgreSQL: `FOR UPDATE SKIP
LOCKED`, so concurrent claimers pass over each other's rows) and leases them with a conditional
UPDATE that re-checks the lease, so two claimers never get one delivery on either database.

Recording a step's attempts is one statement per kind on PostgreSQL: every attempt in one
INSERT ... SELECT FROM unnest(arrays) and every changed delivery in one UPDATE ... FROM
unnest(arrays) (one text array per column, cast back in the statement); SQLite writes one row
at a time (its single writer makes that cheap)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ARRAY,
    Insert,
    Update,
    and_,
    any_,
    bindparam,
    case,
    cast,
    delete,
    exists,
    func,
    insert,
    null,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from adapters.sql.events import delivery_payload
from adapters.sql.tables import (
    DELIVERY_FINISHED,
    DELIVERY_PENDING,
    events,
    webhook_attempts,
    webhook_deliveries,
    webhook_fan_out,
    webhooks,
)
from adapters.sql.types import is_canonical_uuid
from adapters.sql.unnest import unnested
from domain.ports.webhooks import DeliveryBacklog, DeliveryPosition
from domain.webhooks import Attempt, Delivery, DeliveryStatus, Webhook

_FAN_OUT = "fan_out"
_hooks = webhooks.c
_deliveries = webhook_deliveries.c
_attempts = webhook_attempts.c
_WEBHOOK_COLUMNS = [
    _hooks.id,
    _hooks.owner_id,
    _hooks.url,
    _hooks.events,
    _hooks.project_id,
    _hooks.description,
    _hooks.enabled,
    _hooks.disabled_reason,
    _hooks.secret,
    _hooks.previous_secret,
    _hooks.previous_secret_expires_at,
    _hooks.failing_since,
    _hooks.created_at,
    _hooks.updated_at,
    _hooks.version,
]
_SELECT_WEBHOOK = select(*_WEBHOOK_COLUMNS)
_DELIVERY_COLUMNS = [
    _deliveries.id,
    _deliveries.webhook_id,
    _deliveries.event_id,
    _deliveries.event_type,
    _deliveries.project_id,
    _deliveries.payload,
    _deliveries.status,
    _deliveries.attempts,
    _deliveries.next_attempt_at,
    _deliveries.created_at,
    _deliveries.updated_at,
    _deliveries.leased_by,
    _deliveries.leased_until,
]
# The body of the delivery's event while the delivery keeps its payload by reference.
_EVENT_BODY = (
    select(events.c.body)
    .where(events.c.id == _deliveries.event_id, _deliveries.payload.is_(None))
    .scalar_subquery()
    .label("event_body")
)
_SELECT_DELIVERY = select(*_DELIVERY_COLUMNS, _EVENT_BODY)
_INSERT_FIELDS = tuple(column.name for column in _DELIVERY_COLUMNS)


# The columns a recorded attempt writes, and those an attempt changes on its delivery.
_ATTEMPT_FIELDS = (
    "id",
    "delivery_id",
    "attempted_at",
    "duration_ms",
    "response_status",
    "error",
    "response_body",
)
_CHANGED_FIELDS = (
    "status",
    "attempts",
    "next_attempt_at",
    "updated_at",
    "leased_by",
    "leased_until",
)


def _attempts_insert() -> Insert:
    rows = unnested("a_", _ATTEMPT_FIELDS)
    values = [cast(rows.c[name], _attempts[name].type) for name in _ATTEMPT_FIELDS]
    return insert(webhook_attempts).from_select(list(_ATTEMPT_FIELDS), select(*values))


def _deliveries_update() -> Update:
    rows = unnested("d_", ("id", *_CHANGED_FIELDS))
    return (
        update(webhook_deliveries)
        .where(_deliveries.id == cast(rows.c.id, _deliveries.id.type))
        .values({name: cast(rows.c[name], _deliveries[name].type) for name in _CHANGED_FIELDS})
    )


def _deliveries_insert(given: dict[str, Any]) -> Insert:
    """New deliveries from `given` (an expression per column). A delivery whose event is in
    `events` stores no payload (it is built from the event when read); the event's row is
    locked (FOR KEY SHARE on PostgreSQL) so an events purge running meanwhile waits for this
    transaction and then copies the payload in (`adapters.sql.events.keep_payloads`)."""
    kept = exists(
        select(events.c.id)
        .where(events.c.id == given["event_id"])
        .with_for_update(read=True, key_share=True)
    )
    values = {**given, "payload": case((kept, null()), else_=given["payload"])}
    return insert(webhook_deliveries).from_select(
        list(_INSERT_FIELDS), select(*(values[name] for name in _INSERT_FIELDS))
    )


def _unnested_deliveries() -> dict[str, Any]:
    rows = unnested("n_", _INSERT_FIELDS)
    return {name: cast(rows.c[name], _deliveries[name].type) for name in _INSERT_FIELDS}


INSERT_ATTEMPTS_POSTGRESQL = _attempts_insert()
UPDATE_DELIVERIES_POSTGRESQL = _deliveries_update()
# PostgreSQL: every delivery in one statement (text arrays); SQLite: the same per row.
INSERT_DELIVERIES_POSTGRESQL = _deliveries_insert(_unnested_deliveries())
INSERT_DELIVERY = _deliveries_insert(
    {name: bindparam(name, type_=_deliveries[name].type) for name in _INSERT_FIELDS}
)


def _text(value: Any) -> str | None:
    """A value as its PostgreSQL text input (None stays NULL)."""
    if value is None:
        return None
    return value.isoformat() if isinstance(value, datetime) else str(value)


def _columns(prefix: str, rows: Sequence[dict[str, Any]], names: Sequence[str]) -> dict[str, Any]:
    """The `<prefix><name>` text arrays of `rows`, one element per row."""
    return {f"{prefix}{name}": [_text(row[name]) for row in rows] for name in names}


def _attempt_values(attempt: Attempt) -> dict[str, Any]:
    return {
        "id": attempt.id,
        "delivery_id": attempt.delivery_id,
        "attempted_at": attempt.attempted_at,
        "duration_ms": attempt.duration_ms,
        "response_status": attempt.response_status,
        "error": attempt.error,
        "response_body": attempt.response_body,
    }


def _webhook(row: Any) -> Webhook:
    return Webhook(
        id=str(row.id),
        owner_id=str(row.owner_id),
        url=row.url,
        events=tuple(row.events),
        project_id=str(row.project_id) if row.project_id is not None else None,
        description=row.description,
        enabled=bool(row.enabled),
        disabled_reason=row.disabled_reason,
        secret=row.secret,
        previous_secret=row.previous_secret,
        previous_secret_expires_at=row.previous_secret_expires_at,
        failing_since=row.failing_since,
        created_at=row.created_at,
        updated_at=row.updated_at,
        version=row.version,
    )


def _webhook_values(webhook: Webhook) -> dict[str, Any]:
    return {
        "id": webhook.id,
        "owner_id": webhook.owner_id,
        "url": webhook.url,
        "events": list(webhook.events),
        "project_id": webhook.project_id,
        "description": webhook.description,
        "enabled": webhook.enabled,
        "disabled_reason": webhook.disabled_reason,
        "secret": webhook.secret,
        "previous_secret": webhook.previous_secret,
        "previous_secret_expires_at": webhook.previous_secret_expires_at,
        "failing_since": webhook.failing_since,
        "created_at": webhook.created_at,
        "updated_at": webhook.updated_at,
        "version": webhook.version,
    }


def _payload(row: Any) -> str:
    if row.payload is not None:
        return str(row.payload)
    if row.event_body is None:  # the purge copies the payload in before the event goes
        raise LookupError(f"delivery {row.id} has neither a payload nor its event")
    return delivery_payload(row.event_body)


def _delivery(row: Any) -> Delivery:
    return Delivery(
        id=str(row.id),
        webhook_id=str(row.webhook_id),
        event_id=str(row.event_id),
        event_type=row.event_type,
        project_id=str(row.project_id) if row.project_id is not None else None,
        payload=_payload(row),
        status=DeliveryStatus(row.status),
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
        leased_by=row.leased_by,
        leased_until=row.leased_until,
    )


def _delivery_values(delivery: Delivery) -> dict[str, Any]:
    return {
        "id": delivery.id,
        "webhook_id": delivery.webhook_id,
        "event_id": delivery.event_id,
        "event_type": delivery.event_type,
        "project_id": delivery.project_id,
        "payload": delivery.payload,
        "status": delivery.status.value,
        "attempts": delivery.attempts,
        "next_attempt_at": delivery.next_attempt_at,
        "created_at": delivery.created_at,
        "updated_at": delivery.updated_at,
        "leased_by": delivery.leased_by,
        "leased_until": delivery.leased_until,
    }


class SqlWebhookRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self._conn = connection

    async def add(self, webhook: Webhook) -> None:
        await self._conn.execute(insert(webhooks).values(**_webhook_values(webhook)))

    async def get(self, webhook_id: str, *, for_update: bool = False) -> Webhook | None:
        if not is_canonical_uuid(webhook_id):
            return None
        statement = _SELECT_WEBHOOK.where(_hooks.id == webhook_id)
        if for_update:
            statement = statement.with_for_update()
        row = (await self._conn.execute(statement)).first()
        return _webhook(row) if row is not None else None

    async def update(self, webhook: Webhook, expected_version: int) -> bool:
        values = _webhook_values(webhook)
        del values["id"], values["owner_id"], values["created_at"]
        result: Any = await self._conn.execute(
            update(webhooks)
            .where(_hooks.id == webhook.id, _hooks.version == expected_version)
            .values(**values)
        )
        return bool(result.rowcount == 1)

    async def delete(self, webhook_id: str) -> bool:
        # Explicit children first: SQLite enforces ON DELETE CASCADE only with foreign keys on.
        ids = select(_deliveries.id).where(_deliveries.webhook_id == webhook_id)
        await self._conn.execute(delete(webhook_attempts).where(_attempts.delivery_id.in_(ids)))
        await self._conn.execute(
            delete(webhook_deliveries).where(_deliveries.webhook_id == webhook_id)
        )
        result: Any = await self._conn.execute(delete(webhooks).where(_hooks.id == webhook_id))
        return bool(result.rowcount == 1)

    async def list_for_owner(self, owner_id: str) -> list[Webhook]:
        rows = await self._conn.execute(
            _SELECT_WEBHOOK.where(_hooks.owner_id == owner_id).order_by(
                _hooks.created_at, _hooks.id
            )
        )
        return [_webhook(row) for row in rows]

    async def count_for_owner(self, owner_id: str) -> int:
        count = await self._conn.scalar(
            select(func.count()).select_from(webhooks).where(_hooks.owner_id == owner_id)
        )
        return int(count or 0)

    async def enabled(self) -> list[Webhook]:
        rows = await self._conn.execute(
            _SELECT_WEBHOOK.where(_hooks.enabled.is_(True)).order_by(_hooks.id)
        )
        return [_webhook(row) for row in rows]

    async def all_ids(self) -> list[str]:
        rows = await self._conn.execute(select(_hooks.id).order_by(_hooks.id))
        return [str(row.id) for row in rows]


class SqlDeliveryRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self._conn = connection

    async def add(self, delivery: Delivery) -> None:
        await self.add_many([delivery])

    async def add_many(self, deliveries: Sequence[Delivery]) -> None:
        if not deliveries:
            return
        rows = [_delivery_values(delivery) for delivery in deliveries]
        if self._conn.dialect.name == "postgresql":
            await self._conn.execute(
                INSERT_DELIVERIES_POSTGRESQL, _columns("n_", rows, _INSERT_FIELDS)
            )
            return
        await self._conn.execute(INSERT_DELIVERY, rows)

    async def get(self, delivery_id: str) -> Delivery | None:
        if not is_canonical_uuid(delivery_id):
            return None
        row = (
            await self._conn.execute(_SELECT_DELIVERY.where(_deliveries.id == delivery_id))
        ).first()
        return _delivery(row) if row is not None else None

    async def get_many(self, delivery_ids: Sequence[str]) -> list[Delivery]:
        wanted = [i for i in dict.fromkeys(delivery_ids) if is_canonical_uuid(i)]
        if not wanted:
            return []
        rows = await self._conn.execute(_SELECT_DELIVERY.where(_deliveries.id.in_(wanted)))
        return [_delivery(row) for row in rows]

    async def update_many(self, deliveries: Sequence[Delivery]) -> None:
        if not deliveries:
            return
        rows = [_delivery_values(delivery) for delivery in deliveries]
        if self._conn.dialect.name == "postgresql":
            params = _columns("d_", rows, ("id", *_CHANGED_FIELDS))
            await self._conn.execute(UPDATE_DELIVERIES_POSTGRESQL, params)
            return
        for row in rows:
            await self._conn.execute(
                update(webhook_deliveries)
                .where(_deliveries.id == row["id"])
                .values({name: row[name] for name in _CHANGED_FIELDS})
            )

    async def page(
        self,
        webhook_id: str,
        status: DeliveryStatus | None,
        before: DeliveryPosition | None,
        *,
        limit: int,
    ) -> list[Delivery]:
        statement = _SELECT_DELIVERY.where(_deliveries.webhook_id == webhook_id)
        if status is not None:
            statement = statement.where(_deliveries.status == status.value)
        if before is not None:
            statement = statement.where(
                or_(
                    _deliveries.created_at < before.created_at,
                    and_(_deliveries.created_at == before.created_at, _deliveries.id < before.id),
                )
            )
        statement = statement.order_by(_deliveries.created_at.desc(), _deliveries.id.desc())
        rows = await self._conn.execute(statement.limit(limit))
        return [_delivery(row) for row in rows]

    async def claim(
        self, now: datetime, holder: str, until: datetime, limit: int
    ) -> list[Delivery]:
        free = or_(_deliveries.leased_until.is_(None), _deliveries.leased_until <= now)
        # DELIVERY_PENDING / DELIVERY_FINISHED are the partial indexes' own predicates, literal
        # SQL: a bound status (a generic prepared plan, any SQLite statement) could not use them.
        due = and_(
            DELIVERY_PENDING,
            _deliveries.next_attempt_at <= now,
            free,
        )
        candidates = (
            select(_deliveries.id)
            .where(
                due,
                _deliveries.webhook_id.in_(select(_hooks.id).where(_hooks.enabled.is_(True))),
            )
            .order_by(_deliveries.next_attempt_at, _deliveries.id)
            .limit(limit)
            .with_for_update(skip_locked=True, of=webhook_deliveries)
        )
        # One statement: pick, lease, return the leased rows. The pick is the whole rule: on
        # PostgreSQL it locks its rows (passing over those other claimers hold, re-checking a
        # row changed meanwhile), on SQLite the statement holds the single write lock. On
        # PostgreSQL it is an array built once (an InitPlan) and the lease finds its rows by
        # primary key: as an IN subquery (or a CTE) the planner may walk every due row and
        # run the pick again per row, each run passing over the rows already leased.
        postgresql = self._conn.dialect.name == "postgresql"
        pick = candidates.scalar_subquery()
        chosen = (
            _deliveries.id == any_(func.array(pick, type_=ARRAY(_deliveries.id.type)))
            if postgresql
            else _deliveries.id.in_(pick)
        )
        lease = (
            update(webhook_deliveries).where(chosen).values(leased_by=holder, leased_until=until)
        )
        if postgresql:
            leased = await self._conn.execute(lease.returning(*_DELIVERY_COLUMNS, _EVENT_BODY))
        else:
            # SQLite's RETURNING names columns unqualified, which turns the event's subquery
            # into a comparison of the delivery with itself: the rows are read apart.
            ids = [row.id for row in await self._conn.execute(lease.returning(_deliveries.id))]
            if not ids:
                return []
            leased = await self._conn.execute(_SELECT_DELIVERY.where(_deliveries.id.in_(ids)))
        claimed = [_delivery(row) for row in leased]
        claimed.sort(key=lambda d: (d.next_attempt_at or now, d.id))
        return claimed

    async def add_attempts(self, attempts: Sequence[Attempt]) -> None:
        if not attempts:
            return
        rows = [_attempt_values(attempt) for attempt in attempts]
        if self._conn.dialect.name == "postgresql":
            params = _columns("a_", rows, _ATTEMPT_FIELDS)
            await self._conn.execute(INSERT_ATTEMPTS_POSTGRESQL, params)
            return
        for row in rows:
            await self._conn.execute(insert(webhook_attempts).values(**row))

    async def attempts(self, delivery_id: str) -> list[Attempt]:
        rows = await self._conn.execute(
            select(webhook_attempts)
            .where(_attempts.delivery_id == delivery_id)
            .order_by(_attempts.attempted_at, _attempts.id)
        )
        return [
            Attempt(
                id=str(row.id),
                delivery_id=str(row.delivery_id),
                attempted_at=row.attempted_at,
                duration_ms=row.duration_ms,
                response_status=row.response_status,
                error=row.error,
                response_body=row.response_body,
            )
            for row in rows
        ]

    async def backlog(self) -> DeliveryBacklog:
        pending = (
            await self._conn.execute(
                select(func.count(), func.min(_deliveries.next_attempt_at)).where(DELIVERY_PENDING)
            )
        ).one()
        disabled = await self._conn.scalar(
            select(func.count()).select_from(webhooks).where(_hooks.enabled.is_(False))
        )
        oldest = pending[1]
        if isinstance(oldest, str):  # SQLite's MIN() over the text column bypasses the type
            oldest = datetime.fromisoformat(oldest)
        return DeliveryBacklog(int(pending[0] or 0), oldest, int(disabled or 0))

    async def purge_finished(self, before: datetime, limit: int) -> int:
        batch = (
            select(_deliveries.id)
            .where(
                DELIVERY_FINISHED,
                _deliveries.updated_at < before,
            )
            .order_by(_deliveries.updated_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        ids = [row.id for row in await self._conn.execute(batch)]
        if not ids:
            return 0
        await self._conn.execute(delete(webhook_attempts).where(_attempts.delivery_id.in_(ids)))
        result: Any = await self._conn.execute(
            delete(webhook_deliveries).where(_deliveries.id.in_(ids))
        )
        return int(result.rowcount)


class SqlFeedPosition:
    def __init__(self, connection: AsyncConnection) -> None:
        self._conn = connection

    async def get(self) -> str | None:
        position = await self._conn.scalar(
            select(webhook_fan_out.c.position).where(webhook_fan_out.c.name == _FAN_OUT)
        )
        return str(position) if position is not None else None

    async def advance(self, expected: str | None, position: str) -> bool:
        column = webhook_fan_out.c.position
        same = column.is_(None) if expected is None else column == expected
        result: Any = await self._conn.execute(
            update(webhook_fan_out)
            .where(webhook_fan_out.c.name == _FAN_OUT, same)
            .values(position=position)
        )
        if result.rowcount == 1:
            return True
        if expected is not None or await self._exists():
            return False
        # The migration seeds the row; a schema made otherwise gets it here (a racing insert
        # fails on the primary key and rolls its transaction back).
        await self._conn.execute(insert(webhook_fan_out).values(name=_FAN_OUT, position=position))
        return True

    async def _exists(self) -> bool:
        found = await self._conn.scalar(
            select(webhook_fan_out.c.name).where(webhook_fan_out.c.name == _FAN_OUT)
        )
        return found is not None
