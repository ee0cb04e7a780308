"""The raw-connection mode of the SQL unit of work: PostgreSQL, straight on pooled asyncpg.

On the task endpoints SQLAlchemy's per-call machinery (statement cache key, the greenlet bridge
around each driver call, Result rows) costs more CPU than the query. This mode borrows ONE
connection from the engine's pool (pool size, overflow, recycling, pre-ping, the pool gauges and
`dispose()` keep working) and runs the Core statements, each compiled once to `$n` text
(`adapters.sql.compiled`), on the asyncpg connection itself, so asyncpg's per-connection
prepared-statement cache serves every repeat (with `DATABASE_PGBOUNCER`, where that cache is
off, unnamed statements still work).

Transactions keep the unit-of-work contract (leaving without `commit()` changes nothing; one
transaction per use case) in as few round trips as it allows:
- in a read-only unit (queries), reads run at once in autocommit: no BEGIN, no ROLLBACK;
- in a read-write unit, the first read or write opens a real transaction (BEGIN goes with it),
  so a use case that reads then writes does both in one transaction;
- inserts are held until `commit()`; a lone INSERT then goes alone (one round trip, atomic by
  itself), several go inside one transaction; any other statement first writes the held inserts
  inside the transaction, so the unit reads its own writes. A held insert that may be refused
  (the task cap) raises its refusal when it inserts nothing; a `commit()` that raises it has
  rolled back and written nothing.
A write with RETURNING (`write_returning`) that is the unit's first statement goes alone too.
A create is thus one round trip (its membership check and the owner's counter are part of the
INSERT); an update or delete is BEGIN, the read, the conditional write and COMMIT.

A connection that may be in an unknown state (lost, timed out, interrupted mid-statement) is
invalidated, never returned to the pool.
"""

from __future__ import annotations

from typing import Any

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import Dialect, Executable
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import PoolProxiedConnection, QueuePool
from sqlalchemy.util import greenlet_spawn

from adapters.sql.compiled import PositionalText, TextCache
from adapters.sql.outages import is_outage, unavailable
from domain.errors import Conflict, DomainError

_TEXT_CACHES: dict[Dialect, TextCache] = {}


def text_cache(dialect: Dialect) -> TextCache:
    """The compiled texts of one dialect, shared by every unit of work on it."""
    cache = _TEXT_CACHES.get(dialect)
    if cache is None:
        cache = _TEXT_CACHES[dialect] = TextCache(dialect)
    return cache


def rows_hit(status: str) -> int:
    """The row count of an asyncpg command status ("UPDATE 1", "DELETE 0")."""
    return int(status.rpartition(" ")[2])


# A held insert: its text, its arguments, and what to raise when it inserts nothing (if anything).
type _Held = tuple[str, list[Any], Exception | None]


class DriverRunner:
    """Runs compiled statements on one raw asyncpg connection under the module's transaction
    rules (the `StatementRunner` of the task repository)."""

    def __init__(self, connection: Any, texts: TextCache, *, read_only: bool) -> None:
        self._conn = connection
        self._texts = texts
        self._reads_in_transaction = not read_only
        self._pending: list[_Held] = []
        self._transaction: Any = None
        # The connection's state is unknown (lost, timed out, interrupted): never reuse it.
        self.broken = False

    def _call(self, statement: Executable, params: dict[str, Any]) -> tuple[str, list[Any]]:
        text: PositionalText = self._texts.get(statement)
        return text.sql, text.arguments(params)

    async def fetch(self, statement: Executable, params: dict[str, Any]) -> list[Any]:
        sql, args = self._call(statement, params)
        try:
            await self._before_read()
            rows: list[Any] = await self._conn.fetch(sql, *args)
        except BaseException as exc:
            self._failed(exc)
            raise
        return rows

    async def fetch_one(self, statement: Executable, params: dict[str, Any]) -> Any | None:
        sql, args = self._call(statement, params)
        try:
            await self._before_read()
            return await self._conn.fetchrow(sql, *args)
        except BaseException as exc:
            self._failed(exc)
            raise

    async def write(self, statement: Executable, params: dict[str, Any]) -> int:
        sql, args = self._call(statement, params)
        try:
            await self._begin()
            if self._pending:
                await self._write_pending()
            status: str = await self._conn.execute(sql, *args)
        except BaseException as exc:
            self._failed(exc)
            raise
        return rows_hit(status)

    async def insert(
        self, statement: Executable, params: dict[str, Any], *, refused: Exception | None = None
    ) -> None:
        sql, args = self._call(statement, params)
        self._pending.append((sql, args, refused))

    async def write_returning(self, statement: Executable, params: dict[str, Any]) -> Any | None:
        """Run now. As the unit's first statement (no transaction, nothing held) it goes alone,
        atomic and committed by itself, in one round trip; else inside the transaction."""
        sql, args = self._call(statement, params)
        try:
            if self._transaction is not None or self._pending:
                await self._begin()
                if self._pending:
                    await self._write_pending()
            return await self._conn.fetchrow(sql, *args)
        except BaseException as exc:
            self._failed(exc)
            raise

    # --- the unit of work's side ------------------------------------------------------------

    async def commit(self) -> None:
        """Write the held inserts and commit whatever this unit of work changed; raise a held
        insert's refusal instead, having rolled everything back."""
        pending, self._pending = self._pending, []
        transaction, self._transaction = self._transaction, None
        conn = self._conn
        refusal: Exception | None = None
        try:
            if transaction is None and len(pending) == 1:
                refusal = await self._insert_now(pending[0])  # alone: atomic by itself
            elif transaction is not None or pending:
                if transaction is None:
                    transaction = conn.transaction()
                    await transaction.start()
                for held in pending:
                    refusal = await self._insert_now(held)
                    if refusal is not None:
                        break
                if refusal is None:
                    await transaction.commit()
                else:
                    await transaction.rollback()
        except BaseException as exc:
            self._transaction = transaction  # left for `finish` to roll back
            self._failed(exc)
            raise
        if refusal is not None:
            raise refusal

    async def flush(self) -> None:
        """Open the transaction (if not yet open) and write the held inserts inside it; raise a
        held insert's refusal (the transaction stays open, for the unit of work to roll back).
        From then on no statement of this unit goes alone."""
        try:
            await self._write_pending()
        except BaseException as exc:
            self._failed(exc)
            raise

    async def rollback(self) -> None:
        """Forget the held inserts and roll back the open transaction, if any."""
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
        return not self._conn.is_in_transaction()

    # --- helpers ----------------------------------------------------------------------------

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
        """Write the held inserts inside the transaction (opened now if need be); raise the
        first refusal (the transaction stays open, for the unit of work to roll back)."""
        await self._begin()
        pending, self._pending = self._pending, []
        for held in pending:
            refusal = await self._insert_now(held)
            if refusal is not None:
                raise refusal

    async def _insert_now(self, held: _Held) -> Exception | None:
        """Run one held insert; its refusal when it inserted nothing and may be refused."""
        sql, args, refused = held
        status: str = await self._conn.execute(sql, *args)
        if refused is not None and rows_hit(status) == 0:
            return refused
        return None

    def _failed(self, exc: BaseException) -> None:
        """Book a failed driver call; raise `Unavailable` (from `exc`) for an outage, `Conflict`
        for a unique constraint.

        A server-reported error (bad input, a constraint) leaves the connection usable; any
        other failure (lost connection, client timeout, cancellation mid-statement) leaves it in
        an unknown state, so it is not reused. A held insert's refusal (a domain error, raised
        after the server answered) says nothing about the connection.
        """
        if isinstance(exc, DomainError):
            return
        closed = self._conn.is_closed()
        if closed or not isinstance(exc, asyncpg.PostgresError):
            self.broken = True
        if isinstance(exc, Exception) and (closed or is_outage(exc)):
            raise unavailable(exc) from exc
        if isinstance(exc, asyncpg.UniqueViolationError):
            # An insert held until commit met a row stored meanwhile (a second inbox, a
            # membership added twice): what the SQLAlchemy path reports as a Conflict too.
            raise Conflict("this conflicts with something stored meanwhile; retry") from exc


class DriverLink:
    """One raw pooled connection held by a unit of work, and its runner."""

    def __init__(self, engine: AsyncEngine, pooled: PoolProxiedConnection, runner: DriverRunner):
        self._engine = engine
        self._pooled = pooled
        self.runner = runner

    @classmethod
    async def open(cls, engine: AsyncEngine, *, read_only: bool) -> DriverLink:
        # The checkout may connect, ping or recycle: SQLAlchemy does that IO in a greenlet.
        pooled = await engine.raw_connection()
        runner = DriverRunner(
            pooled.driver_connection, text_cache(engine.dialect), read_only=read_only
        )
        return cls(engine, pooled, runner)

    async def commit(self) -> None:
        await self.runner.commit()

    async def rollback(self) -> None:
        await self.runner.rollback()

    async def flush(self) -> None:
        await self.runner.flush()

    async def close(self, exc: BaseException | None) -> None:
        """Roll back what is uncommitted; return the connection, or discard it when its state
        is unknown."""
        reusable = False
        try:
            reusable = await self.runner.finish()
        finally:
            if reusable:
                await return_to_pool(self._engine, self._pooled)
            else:
                discard(self._engine, self._pooled, exc)


# --- the pool ------------------------------------------------------------------------------------
# SQLAlchemy has no async API for a raw connection's return: the two functions below are the only
# places that rely on how its pool behaves, each exercised by the integration tests.


async def return_to_pool(engine: AsyncEngine, pooled: PoolProxiedConnection) -> None:
    """Check a healthy connection in. That needs no IO while the pool has room for it (the
    driver-level reset on return is a no-op, as SQLAlchemy never began a transaction on it),
    so no greenlet; only an overflow connection, which the return closes, needs one."""
    pool = engine.sync_engine.pool
    has_room = isinstance(pool, QueuePool) and (pool.size() <= 0 or pool.checkedin() < pool.size())
    if has_room:
        pooled.close()
    else:
        await greenlet_spawn(pooled.close)


def discard(engine: AsyncEngine, pooled: PoolProxiedConnection, exc: BaseException | None) -> None:
    """Invalidate a connection in an unknown state (outside a greenlet the driver connection is
    terminated at once, without IO). A lost connection also invalidates every pooled connection
    as old as it, as SQLAlchemy does on a disconnect: a database restart broke them all."""
    driver = pooled.driver_connection
    if driver is not None and driver.is_closed():
        engine.sync_engine.pool._invalidate(pooled, exc)  # noqa: SLF001 (no public equivalent)
    else:
        pooled.invalidate(exc)
