"""The Redis client the adapters share, and the readiness probe for it.

The pool is a BlockingConnectionPool: at most `max_connections` sockets per process; a caller
that finds them all busy waits up to `timeout_seconds`, then gets ConnectionError("No connection
available."). Connect and read timeouts are short so that, with Redis down or hung, calls fail
within about a second and the HTTP layer can fail open instead of queueing.

A request makes several Redis calls (gate, principal cache, rate limiter, idempotency), so a hung
Redis would cost it one timeout per call. A circuit breaker in the pool stops that: once a call
times out or loses its connection, every call of this process fails at once (RedisUnavailable, a
ConnectionError) for `failure_cooldown` seconds; then calls go to Redis again, and the next
failure opens it anew.
"""

from __future__ import annotations

import time
from typing import Any

import structlog
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.connection import (
    AbstractConnection,
    Connection,
    SSLConnection,
    UnixDomainSocketConnection,
)
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = structlog.get_logger("taskhub.redis")

# What says Redis cannot answer (as opposed to an error reply, which proves it can).
_OUTAGE = (RedisConnectionError, RedisTimeoutError, OSError)


class RedisUnavailable(RedisConnectionError):
    """Raised without trying while the breaker is open."""


class CircuitBreaker:
    """Open for `cooldown` seconds after a failure; closed (calls go through) otherwise."""

    def __init__(self, cooldown: float, clock: Any = time.monotonic) -> None:
        self.cooldown = cooldown
        self._clock = clock
        self._open_until = 0.0

    def check(self) -> None:
        if self._open_until and self._clock() < self._open_until:
            raise RedisUnavailable("Redis failed recently; not trying until the cooldown ends.")

    def failed(self, error: BaseException) -> None:
        now = self._clock()
        if now >= self._open_until:
            log.warning(
                "redis unavailable; failing its calls at once",
                error=type(error).__name__,
                cooldown_seconds=self.cooldown,
            )
        self._open_until = now + self.cooldown

    def succeeded(self) -> None:
        self._open_until = 0.0


class _BreakerHooks:
    """Connection methods that report outages and successes to the pool's breaker."""

    breaker: CircuitBreaker

    async def connect_check_health(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().connect_check_health(*args, **kwargs)  # type: ignore[misc]
        except _OUTAGE as exc:
            self.breaker.failed(exc)
            raise

    async def send_packed_command(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().send_packed_command(*args, **kwargs)  # type: ignore[misc]
        except _OUTAGE as exc:
            self.breaker.failed(exc)
            raise

    async def read_response(self, *args: Any, **kwargs: Any) -> Any:
        try:
            response = await super().read_response(*args, **kwargs)  # type: ignore[misc]
        except _OUTAGE as exc:
            self.breaker.failed(exc)
            raise
        self.breaker.succeeded()
        return response


class _TcpConnection(_BreakerHooks, Connection):
    pass


class _TlsConnection(_BreakerHooks, SSLConnection):
    pass


class _UnixConnection(_BreakerHooks, UnixDomainSocketConnection):
    pass


_WITH_BREAKER: dict[type[AbstractConnection], type[AbstractConnection]] = {
    Connection: _TcpConnection,
    SSLConnection: _TlsConnection,
    UnixDomainSocketConnection: _UnixConnection,
}


class BreakerConnectionPool(BlockingConnectionPool):
    """A BlockingConnectionPool whose calls fail at once while its breaker is open."""

    breaker: CircuitBreaker

    async def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        # A full pool is load, not an outage: it does not open the breaker. A caller that
        # waited for a connection while the breaker opened gives up too.
        self.breaker.check()
        connection = await super().get_connection(*args, **kwargs)  # type: ignore[no-untyped-call]
        try:
            self.breaker.check()
        except RedisUnavailable:
            await self.release(connection)
            raise
        return connection

    def make_connection(self) -> Any:
        connection = super().make_connection()  # type: ignore[no-untyped-call]
        connection.breaker = self.breaker
        return connection


def create_redis_client(
    url: str,
    *,
    max_connections: int = 20,
    timeout_seconds: float = 1.0,
    socket_timeout: float = 1.0,
    socket_connect_timeout: float | None = None,
    health_check_interval: float = 15.0,
    failure_cooldown: float = 5.0,
) -> Redis:
    """A client that owns its pool (`await client.aclose()` closes both).

    `socket_connect_timeout` defaults to `socket_timeout`. A connection idle for longer than
    `health_check_interval` seconds is PINGed before reuse. A command that fails with a
    ConnectionError is retried once at once (a socket left stale by a Redis restart); timeouts are
    never retried, since the command may already have run. After an outage, calls fail at once
    for `failure_cooldown` seconds (the module text says why).
    """
    pool = BreakerConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=timeout_seconds,
        socket_timeout=socket_timeout,
        socket_connect_timeout=(
            socket_timeout if socket_connect_timeout is None else socket_connect_timeout
        ),
        health_check_interval=health_check_interval,
        retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
        decode_responses=False,
    )
    pool.breaker = CircuitBreaker(failure_cooldown)
    pool.connection_class = _WITH_BREAKER.get(pool.connection_class, pool.connection_class)
    return Redis.from_pool(pool)


class RedisHealthProbe:
    """`/health/ready`'s "redis" check: a PING (raises redis.exceptions.RedisError when down)."""

    name = "redis"

    def __init__(self, client: Redis) -> None:
        self._client = client

    async def check(self) -> None:
        await self._client.ping()
