"""The event log in SQL: recording events with their change, activity reads, the change feed.

Recording adds one statement to a change's transaction: on PostgreSQL every event of the unit
goes in one INSERT ... SELECT FROM unnest(arrays) (and a task created as a member records its
event inside the task's own INSERT, as one more data-modifying CTE: `created_event_cte`); SQLite
writes one row per event (its single writer makes that cheap).

The feed walks events by (txid, seq). `seq` is a sequence taken at insert; `txid` the writing
transaction's id (`pg_current_xact_id()`, 0 on SQLite). On PostgreSQL a read shows only events of
transactions older than the oldest transaction of this database still running in its own
snapshot (`_STABLE_POSTGRESQL`): every transaction with a smaller id that could write here has
committed or rolled back, so no event can later appear before a position already handed out,
and a transaction's events appear together.
A read that finds fewer than `limit` events moves its position up to that horizon, so a reader
that may see few events does not scan the same ones again. SQLite's single writer commits in
`seq` order, so `seq` alone is the order there. docs/architecture.md explains why this is exact.

Retention deletes the oldest events and remembers the newest position it deleted
(`event_horizon`); a position before it has missed an event for good (`CursorExpired`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy import (
    BigInteger,
    DateTime,
    Executable,
    Insert,
    Text,
    bindparam,
    cast,
    delete,
    func,
    insert,
    literal_column,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from adapters.sql.tables import event_horizon, events, webhook_deliveries
from adapters.sql.types import is_canonical_uuid
from adapters.sql.unnest import unnested
from domain.errors import CursorExpired
from domain.events import Event
from domain.ports.events import ActivityItem, FeedReader
from domain.ports.feed import FeedItem
from domain.webhooks import event_payload

_json = msgspec.json.Encoder()
_decode = msgspec.json.Decoder()

# Every column an event row is written with, besides `seq` (the sequence) and `txid`.
_COLUMNS = (
    "id",
    "type",
    "occurred_at",
    "project_id",
    "resource_type",
    "resource_id",
    "audience",
    "body",
)
_TXID_POSTGRESQL = cast(cast(func.pg_current_xact_id(), Text), BigInteger)
_TIMESTAMPTZ = DateTime(timezone=True)
MAX_SEQ = 2**63 - 1


def _row(event: Event) -> dict[str, Any]:
    """The column values of an event row, in driver form."""
    return {
        "id": event.id,
        "type": event.type.value,
        "occurred_at": event.occurred_at,
        "project_id": event.project_id,
        "resource_type": event.resource_type.value,
        "resource_id": event.resource_id,
        "audience": " ".join(sorted(event.audience)) or None,
        "body": _json.encode(event.to_json()).decode(),
    }


def _unnest_insert() -> Insert:
    """PostgreSQL: every event of a unit in one INSERT, one array parameter per column
    (`e_<column>`, text), rows in array order."""
    rows = unnested("e_", _COLUMNS, numbered=True)
    values = [
        _TXID_POSTGRESQL,
        cast(rows.c.id, events.c.id.type),
        rows.c.type,
        cast(rows.c.occurred_at, _TIMESTAMPTZ),
        cast(rows.c.project_id, events.c.project_id.type),
        rows.c.resource_type,
        cast(rows.c.resource_id, events.c.resource_id.type),
        rows.c.audience,
        rows.c.body,
    ]
    return insert(events).from_select(
        ["txid", *_COLUMNS], select(*values).select_from(rows).order_by(rows.c.n)
    )


INSERT_EVENTS_POSTGRESQL = _unnest_insert()
INSERT_EVENT_SQLITE: Insert = insert(events).values(
    txid=0, **{name: bindparam(name) for name in _COLUMNS}
)


def created_event_cte(target: Any, gate: Any, *, many: bool = False, found: bool = True) -> Any:
    """PostgreSQL: the INSERT of a created task's event as a CTE of the task's own statement,
    written only when the task is (one row of `target` joined with `gate`), in the project
    `target.project_id` the statement found. Bound as `e_<column>` (text); with `found` (the
    caller did not know the project: an inbox) the body's `project_id` and `data.project_id`
    are set to that project, else the body is written as given. With `many`, the columns of
    `_CREATED_PER_EVENT` are arrays (`created_events_params`), one element per event in array
    order, and the others one value that every event shares."""
    source = target.join(gate, literal_column("true"))
    if many:
        rows = unnested("e_", _CREATED_PER_EVENT, numbered=True)
        source = source.join(rows, literal_column("true"))

    def given(name: str) -> Any:
        if many and name in _CREATED_PER_EVENT:
            return rows.c[name]
        return bindparam(f"e_{name}", type_=Text())

    body = given("body")
    if found:
        project = cast(target.c.project_id, Text)
        placed = func.jsonb_set(
            cast(body, JSONB), literal_column("'{project_id}'"), func.to_jsonb(project)
        )
        body = func.jsonb_set(placed, literal_column("'{data,project_id}'"), func.to_jsonb(project))
    values = [
        _TXID_POSTGRESQL,
        cast(given("id"), events.c.id.type),
        given("type"),
        cast(given("occurred_at"), _TIMESTAMPTZ),
        target.c.project_id,
        given("resource_type"),
        cast(given("resource_id"), events.c.resource_id.type),
        given("audience"),
        cast(body, Text),
    ]
    rows_in_order = select(*values).select_from(source)
    if many:
        rows_in_order = rows_in_order.order_by(rows.c.n)
    return insert(events).from_select(["txid", *_COLUMNS], rows_in_order).cte("recorded")


# The columns `created_event_cte` takes as parameters (the project is the statement's own).
_CREATED_COLUMNS = tuple(name for name in _COLUMNS if name != "project_id")
# Of those, what differs between the created events of one change; the rest (type, time,
# resource type, audience) they share, and a batch passes it once: the driver checks every
# element of an array parameter, a cost per element that a batch of creates felt.
_CREATED_PER_EVENT = ("id", "resource_id", "body")


def _created_row(event: Event) -> dict[str, Any]:
    row = _row(event)
    row["occurred_at"] = event.occurred_at.isoformat()
    return row


def created_event_params(event: Event) -> dict[str, Any]:
    """The `e_<column>` parameters of `created_event_cte` (all text)."""
    row = _created_row(event)
    return {f"e_{name}": row[name] for name in _CREATED_COLUMNS}


def created_events_params(events_: Sequence[Event]) -> dict[str, Any]:
    """The `e_<column>` parameters of `created_event_cte(..., many=True)`: an array, one
    element per event, for each column of `_CREATED_PER_EVENT`, and the shared value of each
    other column (events that do not share it are a programming error: ValueError)."""
    rows = [_created_row(event) for event in events_]
    params: dict[str, Any] = {}
    for name in _CREATED_COLUMNS:
        values = [row[name] for row in rows]
        if name in _CREATED_PER_EVENT:
            params[f"e_{name}"] = values
        elif values.count(values[0]) != len(values):
            raise ValueError(f"the created events of one statement differ in {name}")
        else:
            params[f"e_{name}"] = values[0]
    return params


_ACTIVITY_COLUMNS = (
    events.c.seq,
    cast(events.c.project_id, Text).label("project_id_text"),
    events.c.type,
    events.c.body,
)
_AFTER = bindparam("after", type_=BigInteger())
_LIMIT = bindparam("limit", type_=BigInteger())
TASK_ACTIVITY = (
    select(*_ACTIVITY_COLUMNS)
    .where(
        events.c.resource_id == bindparam("resource_id", type_=events.c.resource_id.type),
        events.c.resource_type == "task",
        events.c.seq > _AFTER,
    )
    .order_by(events.c.seq)
    .limit(_LIMIT)
)
PROJECT_ACTIVITY = (
    select(*_ACTIVITY_COLUMNS)
    .where(
        events.c.project_id == bindparam("project_id", type_=events.c.project_id.type),
        events.c.seq > _AFTER,
    )
    .order_by(events.c.seq)
    .limit(_LIMIT)
)
LATEST_OF_TASK = (
    select(*_ACTIVITY_COLUMNS)
    .where(
        events.c.resource_id == bindparam("resource_id", type_=events.c.resource_id.type),
        events.c.resource_type == "task",
    )
    .order_by(events.c.seq.desc())
    .limit(1)
)


def _activity(row: Sequence[Any]) -> ActivityItem:
    seq, project_id, type_, body = row[:4]
    return ActivityItem(int(seq), project_id, type_, _decode.decode(body))


class SqlEventLog:
    """The `EventLog` of one SQL unit of work, on its statement runner."""

    def __init__(self, runner: Any, *, postgresql: bool) -> None:
        self._run = runner
        self._postgresql = postgresql
        self.written = 0

    async def append(self, *recorded: Event) -> None:
        if not recorded:
            return
        rows = [_row(event) for event in recorded]
        self.written += len(rows)
        if self._postgresql:
            params: dict[str, Any] = {
                f"e_{name}": [
                    row[name].isoformat() if name == "occurred_at" else row[name] for row in rows
                ]
                for name in _COLUMNS
            }
            await self._run.insert(INSERT_EVENTS_POSTGRESQL, params)
            return
        for row in rows:
            await self._run.insert(INSERT_EVENT_SQLITE, row)

    async def task_activity(
        self, task_id: str, after: int | None, limit: int
    ) -> list[ActivityItem]:
        if not is_canonical_uuid(task_id):
            return []
        params = {"resource_id": task_id, "after": after or 0, "limit": limit}
        return [_activity(row) for row in await self._run.fetch(TASK_ACTIVITY, params)]

    async def project_activity(
        self, project_id: str, after: int | None, limit: int
    ) -> list[ActivityItem]:
        if not is_canonical_uuid(project_id):
            return []
        params = {"project_id": project_id, "after": after or 0, "limit": limit}
        return [_activity(row) for row in await self._run.fetch(PROJECT_ACTIVITY, params)]

    async def latest_of_task(self, task_id: str) -> ActivityItem | None:
        if not is_canonical_uuid(task_id):
            return None
        row = await self._run.fetch_one(LATEST_OF_TASK, {"resource_id": task_id})
        return None if row is None else _activity(row)


# --- the change feed -----------------------------------------------------------------------------

_POSITION = re.compile(r"([0-9]{1,19})\.([0-9]{1,19})")


def parse_position(position: str) -> tuple[int, int]:
    """(txid, seq) of a position string; ValueError for anything else."""
    match = _POSITION.fullmatch(position)
    if match is None:
        raise ValueError("not a feed position")
    txid, seq = int(match[1]), int(match[2])
    if txid > MAX_SEQ or seq > MAX_SEQ:
        raise ValueError("not a feed position")
    return txid, seq


def format_position(txid: int, seq: int) -> str:
    return f"{txid}.{seq}"


# The statements below are assembled from fixed fragments only; every value is a bound parameter.
def _visible(reader: FeedReader | None) -> str:
    """The WHERE condition narrowing events to what `reader` may see now."""
    if reader is None:
        return ""
    only = reader.only is not None
    member = (
        "SELECT m.project_id FROM project_members m WHERE m.user_id = :user_id "  # noqa: S608
        "AND m.role IN :roles" + (" AND m.project_id IN :only" if only else "")
    )
    audience = "e.audience LIKE :audience" + (" AND e.project_id IN :only" if only else "")
    return f" AND (e.project_id IN ({member}) OR ({audience}))"


_HORIZON_KEPT = (
    "coalesce((SELECT h.txid FROM event_horizon h WHERE h.id = 1), 0) AS purged_txid, "
    "coalesce((SELECT h.seq FROM event_horizon h WHERE h.id = 1), 0) AS purged_seq"
)


# PostgreSQL: `stable`, the oldest transaction that may still write events here: the oldest
# one running in this statement's snapshot, leaving out those seen running in another database
# (transaction ids are the whole server's; another database's cannot write this table). One
# that ended since the snapshot is not seen anywhere and is kept: the horizon only errs low.
# Without a running one, the snapshot's xmax. The low 32 bits of an xid8 are the xid.
_STABLE_POSTGRESQL = (
    "SELECT CAST(CAST(coalesce((SELECT min(r.id) FROM pg_snapshot_xip(c.s) AS r(id) "
    "WHERE CAST(CAST(r.id AS text) AS bigint) % 4294967296 NOT IN "
    "(SELECT CAST(CAST(a.backend_xid AS text) AS bigint) FROM pg_stat_activity a "
    "WHERE a.backend_xid IS NOT NULL AND a.datname <> current_database())), "
    "pg_snapshot_xmax(c.s)) AS text) AS bigint) AS stable "
    "FROM (SELECT pg_current_snapshot() AS s) c"
)


def _feed_sql(reader: FeedReader | None, *, postgresql: bool) -> str:
    visible = _visible(reader)
    page_columns = "e.txid, e.seq, e.body"
    if postgresql:
        # `stable`: every transaction of this database older than it has finished.
        return (
            f"WITH snap AS ({_STABLE_POSTGRESQL}) "  # noqa: S608
            f"SELECT snap.stable, {_HORIZON_KEPT}, {page_columns} "
            "FROM snap LEFT JOIN LATERAL (SELECT e.txid, e.seq, e.body FROM events e "
            "WHERE (e.txid, e.seq) > (:after_txid, :after_seq) AND e.txid < snap.stable"
            f"{visible} ORDER BY e.txid, e.seq LIMIT :limit) e ON true ORDER BY e.txid, e.seq"
        )
    return (
        "SELECT (SELECT coalesce(max(x.seq), 0) FROM events x) AS top, "  # noqa: S608
        f"{_HORIZON_KEPT}, {page_columns} FROM (SELECT 1) AS one LEFT JOIN "
        "(SELECT e.txid, e.seq, e.body FROM events e WHERE e.seq > :after_seq"
        f"{visible} ORDER BY e.seq LIMIT :limit) e ON 1 = 1 ORDER BY e.seq"
    )


def feed_item(position: str, raw: str) -> FeedItem:
    """The feed's view of an event row's stored body (JSON text)."""
    body: Mapping[str, Any] = _decode.decode(raw)
    return FeedItem(
        position=position,
        event_id=body["id"],
        type=body["type"],
        project_id=body.get("project_id"),
        occurred_at=datetime.fromisoformat(body["occurred_at"]),
        body=body,
    )


def delivery_payload(raw: str) -> str:
    """The payload of a webhook delivery of the event whose stored body is `raw`."""
    return event_payload(feed_item("", raw))


async def keep_payloads(conn: AsyncConnection, gone: Sequence[tuple[str, str]]) -> None:
    """Give the webhook deliveries that keep their payload by reference to one of the `gone`
    events ((id, stored body), being deleted) their payload, so they outlive the event."""
    bodies = dict(gone)
    if not bodies:
        return
    wanted = await conn.execute(
        select(webhook_deliveries.c.event_id)
        .where(
            webhook_deliveries.c.payload.is_(None),
            webhook_deliveries.c.event_id.in_(list(bodies)),
        )
        .distinct()
    )
    params = [
        {"e_id": str(row[0]), "e_payload": delivery_payload(bodies[str(row[0])])} for row in wanted
    ]
    if params:
        await conn.execute(_KEEP_PAYLOAD, params)


_by_event = webhook_deliveries.c.event_id
_KEEP_PAYLOAD = (
    update(webhook_deliveries)
    .where(
        _by_event == bindparam("e_id", type_=_by_event.type),
        webhook_deliveries.c.payload.is_(None),
    )
    .values(payload=bindparam("e_payload", type_=Text()))
)


class SqlEventFeed:
    """The change feed (`EventFeed`, and the `ChangeFeed` of background jobs) over `events`.
    Each read is one statement in autocommit (one snapshot)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._postgresql = engine.dialect.name == "postgresql"
        self._statements: dict[tuple[bool, bool], Executable] = {}

    def _statement(self, reader: FeedReader | None) -> Executable:
        key = (reader is not None, reader is not None and reader.only is not None)
        statement = self._statements.get(key)
        if statement is None:
            statement = text(_feed_sql(reader, postgresql=self._postgresql))
            if reader is not None:
                statement = statement.bindparams(bindparam("roles", expanding=True))
                if reader.only is not None:
                    statement = statement.bindparams(bindparam("only", expanding=True))
            self._statements[key] = statement
        return statement

    async def read_after(
        self, position: str | None, limit: int, reader: FeedReader | None = None
    ) -> tuple[list[FeedItem], str]:
        after = parse_position(position) if position is not None else None
        params: dict[str, Any] = {"limit": limit}
        if reader is not None:
            params["user_id"] = reader.user_id
            params["roles"] = sorted(role.value for role in reader.roles)
            params["audience"] = f"%{reader.user_id}%"
            if reader.only is not None:
                only = sorted(p for p in reader.only if is_canonical_uuid(p))
                params["only"] = only or ["00000000-0000-0000-0000-000000000000"]
            if not is_canonical_uuid(reader.user_id):
                return [], position or format_position(0, 0)
        statement = self._statement(reader)
        async with self._engine.connect() as conn:
            # The horizon row first: a position before it has missed events for good.
            start = after
            if after is None:
                kept = (
                    await conn.execute(select(event_horizon.c.txid, event_horizon.c.seq))
                ).first()
                start = (int(kept[0]), int(kept[1])) if kept is not None else (0, 0)
            assert start is not None
            params["after_txid"], params["after_seq"] = start
            rows = list(await conn.execute(statement, params))
            await conn.rollback()
        head = rows[0]
        purged = (int(head[1]), int(head[2]))
        if after is not None and after < purged:
            raise CursorExpired("this cursor is older than the oldest event kept; start again")
        items = [self._item(row) for row in rows if row[4] is not None]
        if len(items) >= limit:
            return items, items[-1].position
        horizon = (int(head[0]) - 1, MAX_SEQ) if self._postgresql else (0, int(head[0]))
        return items, format_position(*max(horizon, start, purged))

    @staticmethod
    def _item(row: Sequence[Any]) -> FeedItem:
        txid, seq, raw = row[3], row[4], row[5]
        return feed_item(format_position(int(txid), int(seq)), raw)

    async def now(self) -> str:
        sql = (
            f"SELECT snap.stable - 1 FROM ({_STABLE_POSTGRESQL}) snap"  # noqa: S608
            if self._postgresql
            else "SELECT coalesce(max(seq), 0) FROM events"
        )
        async with self._engine.connect() as conn:
            value = int((await conn.execute(text(sql))).scalar_one())
            await conn.rollback()
        return format_position(value, MAX_SEQ) if self._postgresql else format_position(0, value)

    async def purge_before(self, cutoff: datetime, limit: int) -> int:
        async with self._engine.begin() as conn:
            batch = list(
                await conn.execute(
                    select(events.c.txid, events.c.seq)
                    .where(events.c.occurred_at < cutoff)
                    .order_by(events.c.occurred_at, events.c.seq)
                    .limit(limit)
                )
            )
            if not batch:
                return 0
            newest = max((int(txid), int(seq)) for txid, seq in batch)
            gone = await conn.execute(
                delete(events)
                .where(events.c.seq.in_([row[1] for row in batch]))
                .returning(events.c.id, events.c.body)
            )
            # After the delete (which waits for a fan-out that locked one of these events), so
            # the deliveries that fan-out wrote are seen and keep their payload.
            await keep_payloads(conn, [(str(row[0]), row[1]) for row in gone])
            kept = (await conn.execute(select(event_horizon.c.txid, event_horizon.c.seq))).first()
            if kept is None:
                await conn.execute(
                    insert(event_horizon).values(id=1, txid=newest[0], seq=newest[1])
                )
            elif (int(kept[0]), int(kept[1])) < newest:
                await conn.execute(
                    update(event_horizon)
                    .where(event_horizon.c.id == 1)
                    .values(txid=newest[0], seq=newest[1])
                )
        return len(batch)
