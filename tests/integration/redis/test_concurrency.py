"""Per-subject concurrency slots on Redis, shared by every process."""

from __future__ import annotations

from adapters.redis.client import create_redis_client
from adapters.redis.concurrency import RedisConcurrencyLimiter
from tests.integration.redis.conftest import ClientFactory


async def test_slots_are_shared_across_processes_and_come_back_on_release(
    make_client: ClientFactory, key_prefix: str
) -> None:
    one = RedisConcurrencyLimiter(await make_client(), key_prefix, "search", 2)
    two = RedisConcurrencyLimiter(await make_client(), key_prefix, "search", 2)

    first = await one.acquire("user:a")
    second = await two.acquire("user:a")
    assert first
    assert second
    assert first != second
    assert await one.acquire("user:a") is None  # both slots taken, by two processes
    assert await two.acquire("user:b") is not None  # another subject has its own

    await one.release("user:a", first)
    assert await two.acquire("user:a") is not None


async def test_a_lost_slot_frees_itself_when_its_lease_ends(
    make_client: ClientFactory, key_prefix: str
) -> None:
    client = await make_client()
    limiter = RedisConcurrencyLimiter(client, key_prefix, "lease", 1, lease_seconds=60)
    assert await limiter.acquire("u") is not None  # never released: its worker died
    assert await limiter.acquire("u") is None
    # Move the lease's end into the past, as time would.
    await client.zadd(  # type: ignore[type-var]
        limiter.key_for("u"), dict.fromkeys(await client.zrange(limiter.key_for("u"), 0, -1), 0)
    )
    assert await limiter.acquire("u") is not None


async def test_an_unreachable_redis_fails_open(key_prefix: str) -> None:
    client = create_redis_client("redis://127.0.0.1:1/0", timeout_seconds=0.2, socket_timeout=0.2)
    try:
        limiter = RedisConcurrencyLimiter(client, key_prefix, "down", 1)
        tickets = [await limiter.acquire("u") for _ in range(3)]
        assert all(t is not None for t in tickets)
        for ticket in tickets:
            assert ticket is not None
            await limiter.release("u", ticket)
    finally:
        await client.aclose()
