"""The task unit of work on PostgreSQL, straight on the pooled asyncpg connection.

The task endpoints are the hot path, and there SQLAlchemy's Core layer (statement compilation
and its cache key, the greenlet bridge around each driver call, Result rows) cost more CPU than
the query. This unit of work borrows ONE connection from the same SQLAlchemy pool (pool size,
overflow, recycling, pre-ping, the pool gauges and `dispose()` keep working, behind the same
`ConnectionSlots` admission) and talks to the raw asyncpg connection with literal SQL and `$n`
parameters, so asyncpg's per-connection prepared-statement cache serves every repeat (and with
`DATABASE_PGBOUNCER`, where that cache is off, unnamed statements still work).

Transactions, keeping the unit-of-work contract (leaving without `commit()` changes nothing)
and one transaction per use case (ARCHITECTURE.md rule 5):
- in a read-only unit (queries), reads run at once in autocommit: no BEGIN, no ROLLBACK;
- in a read-write unit, the first read or change opens a real transaction (BEGIN goes with it),
  so a use case that reads then writes does both in one transaction;
- `add` is buffered until `commit()`; a lone INSERT then goes alone (one round trip, atomic by
  itself), several go inside one transaction;
- `update` / `delete` answer at once, so the first of them opens a real transaction, which
  `commit()` commits and leaving the block rolls back. Buffered adds are written inside that
  transaction before any later statement, so the unit of work reads its own writes.
A create (one buffered add, nothing read) is thus one round trip; an update or delete is BEGIN,
the read, the conditional write and COMMIT, as through SQLAlchemy.

Outages (connection refused or lost, timeouts, statement_timeout cancellations) become
`Unavailable` as in `SqlUnitOfWork`; a connection that may be in an unknown state (lost, timed
out, interrupted mid-statement) is invalidated, never returned to the pool.

Filtering, order and keyset follow `domain.ports.tasks` exactly, like `SqlTaskRepository`
(PostgreSQL dialect); the list SQL is built once per query *shape* and kept.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any, Self

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import PoolProxiedConnection, QueuePool
from sqlalchemy.util import greenlet_spawn

from adapters.sql.tables import tasks as tasks_table
from adapters.sql.tasks import TASK_COLUMN_NAMES, task_from_row, task_to_row
from adapters.sql.types import is_canonical_uuid
from adapters.sql.uow import ConnectionSlots, checkout_in_turn, is_outage, unavailable
from domain.ports.tasks import TaskQuery, TaskSort
from domain.tasks import Task, fold_for_search

# Ids come back as canonical lower-case text (the entity's str ids), under names of their own
# so that `id` in WHERE and ORDER BY is still the uuid column and its index.
_SELECT = "SELECT " + ", ".join(
    f"{name}::text AS {name}_text" if name in {"id", "owner_id"} else name
    for name in TASK_COLUMN_NAMES
)
_GET = f"{_SELECT} FROM tasks WHERE id = $1 AND owner_id = $2"

# Every column in table order, the search columns too: the order of the INSERT's and the
# UPDATE's parameters (a unit test holds the SQL below to it).
ROW_COLUMNS = tuple(tasks_table.c.keys())
_INSERT = (
    "INSERT INTO tasks (id, owner_id, title, description, status, priority, labels, due_at,"
    " completed_at, created_at, updated_at, version, title_folded, description_folded)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
)
# The row's own id and owner ($1, $2) locate it; every other column is set.
_UPDATE = (
    "UPDATE tasks SET title = $3, description = $4, status = $5, priority = $6, labels = $7,"
    " due_at = $8, completed_at = $9, created_at = $10, updated_at = $11, version = $12,"
    " title_folded = $13, description_folded = $14"
    " WHERE id = $1 AND owner_id = $2 AND version = $15"
)
_DELETE = "DELETE FROM tasks WHERE id = $1 AND owner_id = $2 AND version = $3"

_SORT_TYPES = {
    "created_at": "timestamptz",
    "updated_at": "timestamptz",
    "due_at": "timestamptz",
    "priority": "smallint",
}


def _row_args(task: Task) -> list[Any]:
    row = task_to_row(task)
    return [row[name] for name in ROW_COLUMNS]


def _like_pattern(q: str) -> str:
    """`%needle%` for LIKE ... ESCAPE '/', the folded needle's wildcards taken literally."""
    needle = fold_for_search(q).replace("/", "//").replace("%", "/%").replace("_", "/_")
    return f"%{needle}%"


# A list query's shape: everything that changes the SQL text, nothing that only changes values.
type _Shape = tuple[TaskSort, bool, bool, bool, bool, bool, bool, int]

_AFTER_NONE, _AFTER_VALUE, _AFTER_NULL = 0, 1, 2


def _shape(query: TaskQuery) -> _Shape:
    f, after = query.filter, query.after
    if after is None:
        position = _AFTER_NONE
    else:
        position = _AFTER_NULL if after.value is None else _AFTER_VALUE
    return (
        query.sort,
        f.status is not None,
        f.priority is not None,
        bool(f.labels),
        f.due_after is not None,
        f.due_before is not None,
        f.q is not None,
        position,
    )


def _page_args(owner_id: str, query: TaskQuery, limit: int) -> list[Any]:
    """The parameters of `_page_sql(_shape(query))`, in its `$n` order."""
    f, after = query.filter, query.after
    args: list[Any] = [owner_id]
    if f.status is not None:
        args.append(f.status.value)
    if f.priority is not None:
        args.append(f.priority)
    if f.labels:
        args.append(list(f.labels))
    if f.due_after is not None:
        args.append(f.due_after)
    if f.due_before is not None:
        args.append(f.due_before)
    if f.q is not None:
        args.append(_like_pattern(f.q))
    if after is not None:
        if after.value is not None:
            args.append(after.value)
        args.append(after.id)
    args.append(limit)
    return args


def _page_sql(shape: _Shape) -> str:
    """The SELECT for one shape (see `domain.ports.tasks` for the order and keyset rules)."""
    sort, status, priority, labels, due_after, due_before, q, position = shape
    conditions = ["owner_id = $1"]

    def param() -> str:
        return f"${len(params) + 2}"

    params: list[str] = []

    def take(template: str) -> None:
        placeholder = param()
        params.append(placeholder)
        conditions.append(template.format(placeholder))

    if status:
        take("status = {}")
    if priority:
        take("priority = {}")
    if labels:
        take("labels @> {}::text[]")
    if due_after:
        take("due_at >= {}")
    if due_before:
        take("due_at < {}")
    if q:
        take("(title_folded LIKE {0} ESCAPE '/' OR description_folded LIKE {0} ESCAPE '/')")
    column = sort.field
    if position != _AFTER_NONE:
        key = None
        if position == _AFTER_VALUE:
            key = f"{param()}::{_SORT_TYPES[column]}"
            params.append(key)
        task_id = f"{param()}::uuid"
        params.append(task_id)
        conditions.append(_after(sort, key, task_id))
    limit = param()
    if sort is TaskSort.DUE_AT:
        order = "due_at ASC NULLS LAST, id ASC"
    elif sort is TaskSort.DUE_AT_DESC:
        order = "due_at DESC NULLS FIRST, id DESC"
    elif sort.descending:
        order = f"{column} DESC, id DESC"
    else:
        order = f"{column} ASC, id ASC"
    return f"{_SELECT} FROM tasks WHERE {' AND '.join(conditions)} ORDER BY {order} LIMIT {limit}"


def _after(sort: TaskSort, key: str | None, task_id: str) -> str:
    """Rows strictly after (key, task_id) in `sort` order; key None is a NULL due_at."""
    column = sort.field
    if column != "due_at":
        return f"({column}, id) {'<' if sort.descending else '>'} ({key}, {task_id})"
    if sort.descending:
        if key is None:
            return f"(due_at IS NOT NULL OR id < {task_id})"
        return f"(due_at, id) < ({key}, {task_id})"
    if key is None:
        return f"(due_at IS NULL AND id > {task_id})"
    return f"((due_at, id) > ({key}, {task_id}) OR due_at IS NULL)"


_PAGE_SQL: dict[_Shape, str] = {}


def _page_statement(query: TaskQuery) -> str:
    shape = _shape(query)
    sql = _PAGE_SQL.get(shape)
    if sql is None:
        sql = _PAGE_SQL[shape] = _page_sql(shape)
    return sql


class AsyncpgTaskRepository:
    """Tasks over one raw asyncpg connection, with the transaction rules of the module text.
    Made and driven by `PgTaskUnitOfWork` (which commits, rolls back and returns it)."""

    def __init__(self, connection: Any, *, read_only: bool = False) -> None:
        self._conn = connection
        self._reads_in_transaction = not read_only
        self._pending: list[Task] = []
        self._transaction: Any = None
        # The connection's state is unknown (lost, timed out, interrupted): never reuse it.
        self.broken = False

    # --- the port ---------------------------------------------------------------------------

    async def add(self, task: Task) -> None:
        self._pending.append(task)

    async def get(self, owner_id: str, task_id: str) -> Task | None:
        if not is_canonical_uuid(task_id) or not is_canonical_uuid(owner_id):
            return None
        try:
            await self._before_read()
            row = await self._conn.fetchrow(_GET, task_id, owner_id)
        except BaseException as exc:
            self._failed(exc)
            raise
        return None if row is None else task_from_row(row)

    async def list_page(self, owner_id: str, query: TaskQuery, *, limit: int) -> list[Task]:
        if not is_canonical_uuid(owner_id):
            return []
        sql = _page_statement(query)
        args = _page_args(owner_id, query, limit)
        try:
            await self._before_read()
            rows = await self._conn.fetch(sql, *args)
        except BaseException as exc:
            self._failed(exc)
            raise
        return [task_from_row(row) for row in rows]

    async def update(self, task: Task, expected_version: int) -> bool:
        """One conditional UPDATE inside the unit's transaction; True when it hit the row."""
        args = _row_args(task)
        args.append(expected_version)
        return await self._write(_UPDATE, args) == "UPDATE 1"

    async def delete(self, owner_id: str, task_id: str, expected_version: int) -> bool:
        if not is_canonical_uuid(task_id) or not is_canonical_uuid(owner_id):
            return False
        return await self._write(_DELETE, [task_id, owner_id, expected_version]) == "DELETE 1"

    # --- the unit of work's side ------------------------------------------------------------

    async def commit(self) -> None:
        """Write the buffered adds and commit whatever this unit of work changed."""
        pending, self._pending = self._pending, []
        transaction, self._transaction = self._transaction, None
        conn = self._conn
        try:
            if transaction is None and len(pending) == 1:
                await conn.execute(_INSERT, *_row_args(pending[0]))
                return
            if transaction is None:
                if not pending:
                    return
                transaction = conn.transaction()
                await transaction.start()
            for task in pending:
                await conn.execute(_INSERT, *_row_args(task))
            await transaction.commit()
        except BaseException as exc:
            self._transaction = transaction  # left for `finish` to roll back
            self._failed(exc)
            raise

    async def rollback(self) -> None:
        """Forget the buffered adds and roll back the open transaction, if any."""
        self._pending.clear()
        transaction, self._transaction = self._transaction, None
        if transaction is None:
            return
        try:
            await transaction.rollback()
        except BaseException as exc:
            self._failed(exc)
            raise

    async def finish(self) -> bool:
        """Roll back what is left; True when the connection can go back to the pool."""
        self._pending.clear()
        transaction, self._transaction = self._transaction, None
        if self.broken or self._conn.is_closed():
            return False
        if transaction is not None:
            try:
                await transaction.rollback()
            except Exception:
                return False
            except BaseException:
                self.broken = True  # interrupted mid-ROLLBACK
                raise
        return self._idle()

    def _idle(self) -> bool:
        return not self._conn.is_in_transaction()

    # --- helpers ----------------------------------------------------------------------------

    async def _write(self, sql: str, args: list[Any]) -> str:
        try:
            await self._begin()
            if self._pending:
                await self._write_pending()
            status: str = await self._conn.execute(sql, *args)
        except BaseException as exc:
            self._failed(exc)
            raise
        return status

    async def _before_read(self) -> None:
        if self._pending:
            await self._write_pending()  # read your own writes
        elif self._reads_in_transaction:
            await self._begin()

    async def _begin(self) -> None:
        if self._transaction is None:
            transaction = self._conn.transaction()
            await transaction.start()
            self._transaction = transaction

    async def _write_pending(self) -> None:
        """Write the buffered adds inside the transaction (opened now if need be)."""
        await self._begin()
        pending, self._pending = self._pending, []
        for task in pending:
            await self._conn.execute(_INSERT, *_row_args(task))

    def _failed(self, exc: BaseException) -> None:
        """Book a failed driver call; raise `Unavailable` (from `exc`) for an outage.

        A server-reported error (bad input, a constraint) leaves the connection usable; any
        other failure (lost connection, client timeout, cancellation mid-statement) leaves it in
        an unknown state, so it is not reused.
        """
        closed = self._conn.is_closed()
        if closed or not isinstance(exc, asyncpg.PostgresError):
            self.broken = True
        if isinstance(exc, Exception) and (closed or is_outage(exc)):
            raise unavailable(exc) from exc


class PgTaskUnitOfWork:
    """`async with uow:` checks one connection out of the engine's pool (after a FIFO slot);
    `uow.tasks` works on it under the module's transaction rules; leaving the block rolls back
    whatever is uncommitted and returns the connection (or discards it when it is broken).

    One instance serves one block at a time.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        read_only: bool = False,
        slots: ConnectionSlots | None = None,
    ) -> None:
        self._engine = engine
        self._read_only = read_only
        self._slots = slots
        self._pooled: PoolProxiedConnection | None = None
        self._tasks: AsyncpgTaskRepository | None = None

    @property
    def tasks(self) -> AsyncpgTaskRepository:
        if self._tasks is None:
            raise RuntimeError("the repositories exist only inside `async with` of the unit")
        return self._tasks

    async def __aenter__(self) -> Self:
        if self._pooled is not None:
            raise RuntimeError("this unit of work is already in use")
        pooled = await checkout_in_turn(self._slots, self._checkout)
        self._pooled = pooled
        self._tasks = AsyncpgTaskRepository(pooled.driver_connection, read_only=self._read_only)
        return self

    async def _checkout(self) -> PoolProxiedConnection:
        try:
            # The checkout may connect, ping or recycle: SQLAlchemy does that IO in a greenlet.
            return await self._engine.raw_connection()
        except Exception as exc:
            if is_outage(exc):
                raise unavailable(exc) from exc
            raise

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        pooled, self._pooled = self._pooled, None
        repository, self._tasks = self._tasks, None
        if pooled is None or repository is None:
            return
        reusable = False
        try:
            reusable = await repository.finish()
        finally:
            try:
                await self._give_back(pooled, reusable, exc)
            finally:
                if self._slots is not None:
                    self._slots.release()

    async def _give_back(
        self, pooled: PoolProxiedConnection, reusable: bool, exc: BaseException | None
    ) -> None:
        """Check the connection in. Mostly that needs no IO (the driver-level rollback SQLAlchemy
        does on return is a no-op, as its own transaction was never begun) and so no greenlet;
        only when the pool is full (an overflow connection) does the return close it."""
        if reusable:
            if self._pool_has_room():
                pooled.close()
            else:
                await greenlet_spawn(pooled.close)
            return
        driver = pooled.driver_connection
        if driver is not None and driver.is_closed():
            # Lost: like SQLAlchemy on a disconnect, recycle every connection as old as this
            # one (a database restart broke them all), and this one now.
            self._engine.sync_engine.pool._invalidate(pooled, exc)
        else:
            # Without a greenlet the driver connection is terminated at once, without IO.
            pooled.invalidate(exc)

    def _pool_has_room(self) -> bool:
        pool = self._engine.sync_engine.pool
        if not isinstance(pool, QueuePool):
            return False
        size = pool.size()
        return size <= 0 or pool.checkedin() < size

    async def commit(self) -> None:
        if self._read_only:
            raise RuntimeError("a read-only unit of work cannot commit")
        await self.tasks.commit()

    async def rollback(self) -> None:
        await self.tasks.rollback()
