"""The async SQLAlchemy engine for PostgreSQL (asyncpg) or SQLite (aiosqlite), and its probe."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry


def create_engine(
    url: str,
    *,
    pool_size: int = 10,
    max_overflow: int = 10,
    pool_recycle: int = 1800,
    pool_timeout: float = 5.0,
    statement_timeout_ms: int = 5000,
    connect_timeout: float = 5.0,
    pre_ping: bool = False,
    pgbouncer: bool = False,
) -> AsyncEngine:
    """An engine with production pool settings (PostgreSQL) or a WAL-mode file (SQLite).

    A statement timeout bounds every query (server side) and `command_timeout` the wait for it
    (client side), so a hung database makes requests fail fast rather than pile up.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": 15})
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    server_settings = {"application_name": "taskhub"}
    connect_args: dict[str, Any] = {
        "timeout": connect_timeout,
        "command_timeout": max(1.0, statement_timeout_ms / 1000 + 1),
        "server_settings": server_settings,
    }
    if pgbouncer:
        # PgBouncer in transaction mode (before 1.21, or without max_prepared_statements) may
        # hand each round trip outside a transaction to another server connection, so a
        # statement prepared in one may be missing in the next (autocommit reads). No statement
        # caches, and only the unnamed statement: asyncpg then sends Parse again with every
        # Bind, in one round trip. PgBouncer refuses startup parameters it does not know (and
        # could not keep them: server connections are shared), so the server-side timeouts come
        # from the database role there (ALTER ROLE ... SET).
        connect_args["statement_cache_size"] = 0
        connect_args["prepared_statement_cache_size"] = 0
        connect_args["prepared_statement_name_func"] = _unnamed_statement
    else:
        server_settings["statement_timeout"] = str(statement_timeout_ms)
        server_settings["idle_in_transaction_session_timeout"] = str(
            max(statement_timeout_ms * 4, 10000)
        )
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_recycle=pool_recycle,
        pool_timeout=pool_timeout,
        # A pre-ping costs up to three round trips per checkout with asyncpg (BEGIN; ;
        # ROLLBACK). Without it, a connection broken by a database restart fails its first
        # statement once (503), SQLAlchemy then invalidates the whole pool and later requests
        # reconnect by themselves.
        pool_pre_ping=pre_ping,
        connect_args=connect_args,
    )


def _unnamed_statement() -> str:
    return ""


def _sqlite_pragmas(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=15000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


class SchemaMissing(RuntimeError):
    """The database answers but has never been migrated."""


class SqlHealthProbe:
    """Readiness: the database answers on a pooled connection AND carries a migrated schema
    (an unmigrated database would fail every request). The caller bounds the time."""

    name = "database"

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def check(self) -> None:
        async with self._engine.connect() as conn:
            try:
                row = (await conn.execute(text("SELECT version_num FROM alembic_version"))).first()
            except ProgrammingError as exc:  # no alembic_version table
                raise SchemaMissing("the database has no schema; run `taskhub migrate`") from exc
            except OperationalError as exc:
                if "no such table" in str(exc):  # SQLite's way of saying the same
                    raise SchemaMissing(
                        "the database has no schema; run `taskhub migrate`"
                    ) from exc
                raise
        if row is None:
            raise SchemaMissing("the database has no schema; run `taskhub migrate`")


def pool_status(engine: AsyncEngine) -> tuple[int, int]:
    """(checked out, overflow) of the engine's pool, as the pool counts them right now."""
    pool: Any = engine.sync_engine.pool
    try:
        return int(pool.checkedout()), max(0, int(pool.overflow()))
    except (AttributeError, TypeError):
        return 0, 0


def watch_pool(engine: AsyncEngine, report: Callable[[int, int], None]) -> None:
    """Call `report(checked_out, overflow)` whenever a connection leaves or returns to the pool
    (for gauges; cheaper and more exact than sampling)."""

    pool: Any = engine.sync_engine.pool
    checked_out = 0

    def moved(step: int) -> Callable[..., None]:
        def listener(*_: Any) -> None:
            nonlocal checked_out
            # The pool's own count lags inside its checkin event; count the events instead.
            checked_out = max(0, checked_out + step)
            try:
                overflow = max(0, int(pool.overflow()))
            except (AttributeError, TypeError):
                overflow = 0
            report(checked_out, overflow)

        return listener

    event.listen(pool, "checkout", moved(+1))
    event.listen(pool, "checkin", moved(-1))
