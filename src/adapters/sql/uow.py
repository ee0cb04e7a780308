"""The SQL unit of work: one pooled connection and one transaction per `async with`.

One class with two ways to hold the connection: through SQLAlchemy (`AsyncConnection`; every
repository, both databases), or, where it pays, the raw-connection mode (`raw=True`, PostgreSQL,
tasks only; `adapters.sql.raw`). The lifecycle is the same: a FIFO slot, a checkout, the
repositories over it, and on leaving a rollback of whatever is uncommitted and the return.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, Self

import structlog
from sqlalchemy import Executable
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from adapters.sql.events import SqlEventLog
from adapters.sql.identity import SqlApiKeyRepository, SqlSessionRepository, SqlUserRepository
from adapters.sql.outages import is_outage, unavailable
from adapters.sql.projects import (
    SqlCommentRepository,
    SqlMembershipRepository,
    SqlProjectRepository,
    SqlProjectTasks,
)
from adapters.sql.raw import DriverLink
from adapters.sql.tasks import SqlTaskRepository
from adapters.sql.webhooks import SqlDeliveryRepository, SqlFeedPosition, SqlWebhookRepository
from domain.errors import Unavailable

log = structlog.get_logger("taskhub.sql")


class ConnectionSlots:
    """First come, first served admission to the connection pool (one per engine and worker).

    SQLAlchemy's async pool lets a newly arriving request take a connection that was just
    returned before a request already waiting for one wakes up; under sustained load above the
    pool size some requests then starve until the pool timeout (and get 503s) while the median
    stays low. A FIFO semaphore sized like the pool queues requests fairly instead, with the same
    bound on the wait.
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


class ConnectionRunner:
    """Runs statements through SQLAlchemy on one `AsyncConnection` (the task repository's
    `StatementRunner` there), inside whatever transaction the connection is in."""

    def __init__(self, connection: AsyncConnection) -> None:
        self._conn = connection

    async def fetch(self, statement: Executable, params: dict[str, Any]) -> list[Any]:
        return list(await self._conn.execute(statement, params))

    async def fetch_one(self, statement: Executable, params: dict[str, Any]) -> Any | None:
        return (await self._conn.execute(statement, params)).first()

    async def write(self, statement: Executable, params: dict[str, Any]) -> int:
        result: Any = await self._conn.execute(statement, params)
        return int(result.rowcount)

    async def insert(
        self, statement: Executable, params: dict[str, Any], *, refused: Exception | None = None
    ) -> None:
        result: Any = await self._conn.execute(statement, params)
        if refused is not None and result.rowcount == 0:
            raise refused

    async def write_returning(self, statement: Executable, params: dict[str, Any]) -> Any | None:
        return (await self._conn.execute(statement, params)).first()


class ConnectionLink:
    """One SQLAlchemy connection held by a unit of work: a transaction begun at once (or, read
    only, autocommit: one statement per round trip, no BEGIN/ROLLBACK around a single SELECT)."""

    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection
        self.runner = ConnectionRunner(connection)

    @classmethod
    async def open(cls, engine: AsyncEngine, *, read_only: bool) -> ConnectionLink:
        conn = await engine.connect()
        try:
            if read_only:
                await conn.execution_options(isolation_level="AUTOCOMMIT")
            else:
                await conn.begin()
        except BaseException:
            await conn.close()
            raise
        return cls(conn)

    async def commit(self) -> None:
        try:
            await self.connection.commit()
        except Exception as exc:
            if is_outage(exc):
                raise unavailable(exc) from exc
            raise

    async def rollback(self) -> None:
        await self.connection.rollback()

    async def flush(self) -> None:
        """Nothing to do: the transaction is open and every statement has run."""

    async def close(self, exc: BaseException | None) -> None:
        conn = self.connection
        try:
            if conn.in_transaction():
                await conn.rollback()
        except Exception:
            # A dead connection cannot roll back; the pool discards it. Report the first error.
            if exc is None:
                raise
        finally:
            await conn.close()


class SqlUnitOfWork:
    """`async with uow:` checks out a connection (after a FIFO slot when given `slots`);
    `commit()` makes the work stick (a later statement begins the next transaction); leaving
    the block rolls back whatever is uncommitted and returns the connection to the pool.

    `read_only=True` (for queries) runs each statement on its own in autocommit mode: no
    BEGIN/ROLLBACK round trips, and `commit()` is refused. `raw=True` (PostgreSQL) serves
    tasks and the project repositories they read (projects, memberships, comments, task
    placement) on the raw asyncpg connection (`adapters.sql.raw` gives its round trips), not
    users, sessions or keys.

    It serves every unit-of-work port: identity, tasks, projects (`SqlProjectUnitOfWork`) and
    webhooks (not in the raw mode). `on_events` hears, after each commit that wrote events, how
    many.

    The repositories exist only inside the block. One instance serves one block at a time.
    """

    users: SqlUserRepository
    sessions: SqlSessionRepository
    api_keys: SqlApiKeyRepository
    tasks: SqlTaskRepository
    projects: SqlProjectRepository
    memberships: SqlMembershipRepository
    comments: SqlCommentRepository
    project_tasks: SqlProjectTasks
    webhooks: SqlWebhookRepository
    deliveries: SqlDeliveryRepository
    feed_position: SqlFeedPosition
    events: SqlEventLog

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        read_only: bool = False,
        slots: ConnectionSlots | None = None,
        raw: bool = False,
        on_events: Callable[[int], None] | None = None,
    ) -> None:
        postgresql = engine.dialect.name == "postgresql"
        if raw and not postgresql:
            raise ValueError("the raw-connection mode needs PostgreSQL")
        self._engine = engine
        self._read_only = read_only
        self._slots = slots
        self._raw = raw
        self._postgresql = postgresql
        self._on_events = on_events
        self._link: ConnectionLink | DriverLink | None = None

    async def __aenter__(self) -> Self:
        if self._link is not None:
            raise RuntimeError("this unit of work is already in use")
        link = await checkout_in_turn(self._slots, self._open)
        self._link = link
        runner = link.runner
        self.events = SqlEventLog(runner, postgresql=self._postgresql)
        self.tasks = SqlTaskRepository(runner, postgresql=self._postgresql, events=self.events)
        self.projects = SqlProjectRepository(runner)
        self.memberships = SqlMembershipRepository(runner)
        self.comments = SqlCommentRepository(runner)
        self.project_tasks = SqlProjectTasks(runner)
        if isinstance(link, ConnectionLink):
            conn = link.connection
            self.users = SqlUserRepository(conn)
            self.sessions = SqlSessionRepository(conn)
            self.api_keys = SqlApiKeyRepository(conn)
            self.webhooks = SqlWebhookRepository(conn)
            self.deliveries = SqlDeliveryRepository(conn)
            self.feed_position = SqlFeedPosition(conn)
        return self

    async def _open(self) -> ConnectionLink | DriverLink:
        opener = DriverLink.open if self._raw else ConnectionLink.open
        try:
            return await opener(self._engine, read_only=self._read_only)
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
        link, self._link = self._link, None
        if link is None:
            return
        try:
            await link.close(exc)
        finally:
            if self._slots is not None:
                self._slots.release()
        if isinstance(exc, Exception) and is_outage(exc):
            raise unavailable(exc) from exc

    async def commit(self) -> None:
        if self._read_only:
            raise RuntimeError("a read-only unit of work cannot commit")
        await self._current().commit()
        written, self.events.written = self.events.written, 0
        if written and self._on_events is not None:
            self._on_events(written)

    async def rollback(self) -> None:
        self.events.written = 0
        await self._current().rollback()

    async def flush(self) -> None:
        """Open the transaction now and write held inserts inside it (see the port)."""
        if self._read_only:
            raise RuntimeError("a read-only unit of work cannot write")
        await self._current().flush()

    def _current(self) -> ConnectionLink | DriverLink:
        if self._link is None:
            raise RuntimeError("commit/rollback outside `async with` of the unit of work")
        return self._link


# The same unit of work, by the name of the port it serves for projects and collaboration.
SqlProjectUnitOfWork = SqlUnitOfWork
