"""The SQL unit of work: one pooled connection and one transaction per `async with`."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Self

import structlog
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as SqlalchemyTimeout
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from adapters.sql.identity import SqlApiKeyRepository, SqlSessionRepository, SqlUserRepository
from adapters.sql.tasks import SqlTaskRepository
from domain.errors import Unavailable

log = structlog.get_logger("taskhub.sql")


def is_outage(exc: Exception) -> bool:
    """The database is unreachable, restarting or too slow (not a bug, not bad input), whether
    SQLAlchemy wrapped the driver's error or the driver raised it itself."""
    if isinstance(exc, DBAPIError):
        return (
            exc.connection_invalidated
            or isinstance(exc, OperationalError | InterfaceError)
            or _is_timeout(exc.orig)
        )
    return isinstance(exc, OSError | TimeoutError | SqlalchemyTimeout) or _is_timeout(exc)


# asyncpg's statement timeout (QueryCanceledError), its connection-level errors (SQLSTATE class
# 08) and operator intervention (class 57: shutdown, terminated backend, cancelled statement).
_OUTAGE_ERRORS = frozenset(
    {
        "QueryCanceledError",
        "ConnectionDoesNotExistError",
        "CannotConnectNowError",
        "PostgresConnectionError",
        "OperatorInterventionError",
    }
)


def _is_timeout(orig: BaseException | None) -> bool:
    if orig is None:
        return False
    return any(kind.__name__ in _OUTAGE_ERRORS for kind in type(orig).__mro__)


def unavailable(exc: BaseException) -> Unavailable:
    log.warning("database unavailable", error=type(exc).__name__)
    return Unavailable("The database is unavailable right now; retry shortly.")


class ConnectionSlots:
    """First come, first served admission to the connection pool (one per engine and worker).

    SQLAlchemy's async pool lets a newly arriving request take a connection that was just
    returned before a request already waiting for one wakes up; under sustained load above the
    pool size some requests then starve until the pool timeout (measured: 5 s waits and 503s at
    a p50 of 60 ms). A FIFO semaphore sized like the pool queues requests fairly instead, with
    the same bound on the wait.
    """

    def __init__(self, size: int, timeout_seconds: float) -> None:
        self._semaphore = asyncio.Semaphore(size)
        self._timeout = timeout_seconds

    async def acquire(self) -> None:
        if not self._semaphore.locked():
            await self._semaphore.acquire()  # a free slot: no wait, no timer to arm
            return
        try:
            async with asyncio.timeout(self._timeout):
                await self._semaphore.acquire()
        except TimeoutError:
            log.warning("no database connection free in time", waited_s=self._timeout)
            raise Unavailable("The database is busy right now; retry shortly.") from None

    def release(self) -> None:
        self._semaphore.release()


async def checkout_in_turn[T](
    slots: ConnectionSlots | None, checkout: Callable[[], Awaitable[T]]
) -> T:
    """Wait for a slot (when there are slots), then check a connection out; the slot is given
    back at once when the checkout fails. Every unit of work on the pool enters through here."""
    if slots is not None:
        await slots.acquire()
    try:
        return await checkout()
    except BaseException:
        if slots is not None:
            slots.release()
        raise


class SqlUnitOfWork:
    """`async with uow:` checks out a connection and begins a transaction; `commit()` makes the
    work stick (a later statement begins the next transaction); leaving the block rolls back
    whatever is uncommitted and returns the connection to the pool.

    `read_only=True` (for queries) runs each statement on its own in autocommit mode: no
    BEGIN/ROLLBACK round trips, and `commit()` is refused.

    The repositories exist only inside the block. One instance serves one block at a time.
    """

    users: SqlUserRepository
    sessions: SqlSessionRepository
    api_keys: SqlApiKeyRepository
    tasks: SqlTaskRepository

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
        self._conn: AsyncConnection | None = None

    async def __aenter__(self) -> Self:
        if self._conn is not None:
            raise RuntimeError("this unit of work is already in use")
        conn = await checkout_in_turn(self._slots, self._connect)
        self._conn = conn
        self.users = SqlUserRepository(conn)
        self.sessions = SqlSessionRepository(conn)
        self.api_keys = SqlApiKeyRepository(conn)
        self.tasks = SqlTaskRepository(conn)
        return self

    async def _connect(self) -> AsyncConnection:
        try:
            conn = await self._engine.connect()
        except Exception as exc:
            if is_outage(exc):
                raise unavailable(exc) from exc
            raise
        try:
            if self._read_only:
                # One statement per round trip, no BEGIN/ROLLBACK around a single SELECT.
                await conn.execution_options(isolation_level="AUTOCOMMIT")
            else:
                await conn.begin()
        except BaseException as exc:
            await conn.close()
            if isinstance(exc, Exception) and is_outage(exc):
                raise unavailable(exc) from exc
            raise
        return conn

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            if conn.in_transaction():
                await conn.rollback()
        except Exception:
            # A dead connection cannot roll back; the pool discards it. Report the first error.
            if exc is None:
                raise
        finally:
            try:
                await conn.close()
            finally:
                if self._slots is not None:
                    self._slots.release()
        if isinstance(exc, Exception) and is_outage(exc):
            raise unavailable(exc) from exc

    async def commit(self) -> None:
        if self._read_only:
            raise RuntimeError("a read-only unit of work cannot commit")
        try:
            await self._connection().commit()
        except Exception as exc:
            if is_outage(exc):
                raise unavailable(exc) from exc
            raise

    async def rollback(self) -> None:
        await self._connection().rollback()

    def _connection(self) -> AsyncConnection:
        if self._conn is None:
            raise RuntimeError("commit/rollback outside `async with` of the unit of work")
        return self._conn
