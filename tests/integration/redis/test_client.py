"""The Redis client factory: bounded blocking pool, health probe, and fast failure when Redis is
unreachable or hung (so the HTTP layer can fail open). No timing is asserted: only that calls
raise; pytest-timeout guards against a hang."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import BlockingConnectionPool, Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from adapters.redis.client import RedisHealthProbe, RedisUnavailable, create_redis_client
from adapters.redis.idempotency import RedisIdempotencyStore
from adapters.redis.rate_limit import RedisRateLimiter
from domain.ports import HealthProbe, RateLimitPolicy
from tests.integration.redis.conftest import ClientFactory

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]

POLICY = RateLimitPolicy("default", 10, 60)
UNREACHABLE = "redis://127.0.0.1:1/0"  # nothing listens on port 1: connection refused


async def test_a_small_pool_serves_many_concurrent_calls_by_waiting(
    make_client: ClientFactory, key_prefix: str
) -> None:
    client = await make_client(max_connections=2, timeout_seconds=10)
    pool = client.connection_pool
    assert isinstance(pool, BlockingConnectionPool)
    assert pool.max_connections == 2
    limiter = RedisRateLimiter(client, key_prefix)
    decisions = await asyncio.gather(*(limiter.hit(POLICY, f"s{i}") for i in range(100)))
    assert all(d.allowed for d in decisions)


async def test_an_exhausted_pool_raises_connection_error_after_its_timeout(
    make_client: ClientFactory,
) -> None:
    client = await make_client(max_connections=1, timeout_seconds=0.2)
    held = await client.connection_pool.get_connection()  # type: ignore[no-untyped-call]
    try:
        with pytest.raises(RedisConnectionError, match="No connection available"):
            await client.ping()
    finally:
        await client.connection_pool.release(held)
    assert await client.ping()


async def test_the_health_probe_pings(client: Redis) -> None:
    probe: HealthProbe = RedisHealthProbe(client)
    assert probe.name == "redis"
    await probe.check()


@pytest.fixture
async def unreachable_client() -> AsyncIterator[Redis]:
    client = create_redis_client(UNREACHABLE, socket_timeout=0.5)
    yield client
    await client.aclose()


async def test_every_adapter_raises_connection_error_when_redis_is_unreachable(
    unreachable_client: Redis,
) -> None:
    with pytest.raises(RedisConnectionError):
        await RedisRateLimiter(unreachable_client, "t:").hit(POLICY, "alice")
    with pytest.raises(RedisConnectionError):
        await RedisIdempotencyStore(unreachable_client, "t:").begin("k", "fp", 60)
    with pytest.raises(RedisConnectionError):
        await RedisHealthProbe(unreachable_client).check()


@pytest.fixture
async def silent_server() -> AsyncIterator[str]:
    """A TCP server that accepts connections and never answers (a hung Redis)."""
    writers: list[asyncio.StreamWriter] = []

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        while await reader.read(4096):
            pass

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield f"redis://127.0.0.1:{port}/0"
    for writer in writers:
        writer.close()
    server.close()
    await server.wait_closed()


async def test_a_hung_redis_makes_calls_time_out_instead_of_waiting(silent_server: str) -> None:
    client = create_redis_client(silent_server, socket_timeout=0.3)
    try:
        with pytest.raises((RedisTimeoutError, RedisConnectionError)):
            await RedisRateLimiter(client, "t:").hit(POLICY, "alice")
        with pytest.raises((RedisTimeoutError, RedisConnectionError)):
            await RedisHealthProbe(client).check()
    finally:
        await client.aclose()


async def test_after_a_timeout_calls_fail_at_once_until_the_cooldown_ends(
    silent_server: str, make_client: ClientFactory
) -> None:
    hung = create_redis_client(silent_server, socket_timeout=0.3, failure_cooldown=600)
    try:
        with pytest.raises(RedisTimeoutError):
            await hung.ping()
        # Open: no connection is even tried (the pool has made none since the timeout).
        made = len(hung.connection_pool._available_connections)  # type: ignore[attr-defined]
        for _ in range(3):
            with pytest.raises(RedisUnavailable):
                await hung.ping()
        assert len(hung.connection_pool._available_connections) == made  # type: ignore[attr-defined]
    finally:
        await hung.aclose()
    healthy = await make_client(failure_cooldown=0.2)
    healthy.connection_pool.breaker.failed(RedisTimeoutError("as if"))  # type: ignore[attr-defined]
    with pytest.raises(RedisUnavailable):
        await healthy.ping()
    await asyncio.sleep(0.5)  # past the cooldown: calls go to Redis again
    assert await healthy.ping()
