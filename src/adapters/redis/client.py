"""The Redis client the adapters share, and the readiness probe for it.

The pool is a BlockingConnectionPool (PITFALLS 10): at most `max_connections` sockets per process;
a caller that finds them all busy waits up to `timeout_seconds`, then gets ConnectionError("No
connection available."). Connect and read timeouts are short so that, with Redis down or hung,
calls fail within about a second and the HTTP layer can fail open instead of queueing.
"""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError


def create_redis_client(
    url: str,
    *,
    max_connections: int = 20,
    timeout_seconds: float = 1.0,
    socket_timeout: float = 1.0,
    socket_connect_timeout: float | None = None,
    health_check_interval: float = 15.0,
) -> Redis:
    """A client that owns its pool (`await client.aclose()` closes both).

    `socket_connect_timeout` defaults to `socket_timeout`. A connection idle for longer than
    `health_check_interval` seconds is PINGed before reuse. A command that fails with a
    ConnectionError is retried once at once (a socket left stale by a Redis restart); timeouts are
    never retried, since the command may already have run.
    """
    pool = BlockingConnectionPool.from_url(
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
    return Redis.from_pool(pool)


class RedisHealthProbe:
    """`/health/ready`'s "redis" check: a PING (raises redis.exceptions.RedisError when down)."""

    name = "redis"

    def __init__(self, client: Redis) -> None:
        self._client = client

    async def check(self) -> None:
        await self._client.ping()
