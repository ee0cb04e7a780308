"""RedisRateLimiter against a real Redis: same answers as the memory twin, atomic under load."""

from __future__ import annotations

import asyncio
import time

import pytest
from redis.asyncio import Redis

from adapters.memory.rate_limit import MemoryRateLimiter
from adapters.redis.rate_limit import RedisRateLimiter
from domain.ports import RateLimitDecision, RateLimitPolicy
from domain.rate_limits import gcra_parameters, parse_policy
from tests.integration.redis.conftest import ClientFactory

pytestmark = pytest.mark.integration


async def test_same_decisions_as_the_memory_limiter_within_one_window(
    client: Redis, key_prefix: str
) -> None:
    redis_limiter = RedisRateLimiter(client, key_prefix)
    frozen = 1_700_000_000_000_000
    memory_limiter = MemoryRateLimiter(clock_us=lambda: frozen)
    sequence = [
        (parse_policy("default", "5/minute"), "alice"),
        (parse_policy("login", "2/minute"), "alice"),
        (parse_policy("default", "5/minute"), "bob"),
    ] * 8
    from_redis = [await redis_limiter.hit(policy, subject) for policy, subject in sequence]
    from_memory = [await memory_limiter.hit(policy, subject) for policy, subject in sequence]
    assert from_redis == from_memory
    assert [d.allowed for d in from_redis[:3]] == [True, True, True]
    assert from_redis[-2] == RateLimitDecision(False, 2, 0, 60, 30)  # login/alice, 8th try


async def test_a_weighted_hit_counts_as_its_cost_as_in_the_memory_limiter(
    client: Redis, key_prefix: str
) -> None:
    redis_limiter = RedisRateLimiter(client, key_prefix)
    frozen = 1_700_000_000_000_000
    memory_limiter = MemoryRateLimiter(clock_us=lambda: frozen)
    policy = parse_policy("default", "10/minute")
    costs = [3, 1, 5, 2, 1]  # the fourth does not fit (9 used, 2 asked): refused, nothing taken
    from_redis = [await redis_limiter.hit(policy, "carol", cost) for cost in costs]
    from_memory = [await memory_limiter.hit(policy, "carol", cost) for cost in costs]
    assert from_redis == from_memory
    assert [(d.allowed, d.remaining) for d in from_redis] == [
        (True, 7),
        (True, 6),
        (True, 1),
        (False, 0),
        (True, 0),
    ]


async def test_the_key_holds_the_tat_and_expires_when_the_bucket_is_full_again(
    client: Redis, key_prefix: str
) -> None:
    limiter = RedisRateLimiter(client, key_prefix)
    policy = RateLimitPolicy("default", 4, 60)  # 15 s per request
    for _ in range(2):
        await limiter.hit(policy, "10.0.0.1")
    key = f"{key_prefix}rl:default:10.0.0.1"
    assert limiter.key_for(policy, "10.0.0.1") == key
    assert 29_000 < await client.pttl(key) <= 30_000
    seconds, micros = await client.time()
    stored = await client.get(key)
    assert isinstance(stored, bytes)
    tat = int(stored)
    assert 29_000_000 < tat - (seconds * 1_000_000 + micros) <= 30_000_000


async def test_a_refused_request_leaves_the_bucket_untouched(
    client: Redis, key_prefix: str
) -> None:
    limiter = RedisRateLimiter(client, key_prefix)
    policy = RateLimitPolicy("login", 1, 60)
    await limiter.hit(policy, "alice")
    key = limiter.key_for(policy, "alice")
    stored = await client.get(key)
    refused = await limiter.hit(policy, "alice")
    assert not refused.allowed
    assert refused.retry_after == 60
    assert await client.get(key) == stored


async def test_the_bucket_refills_with_server_time(client: Redis, key_prefix: str) -> None:
    limiter = RedisRateLimiter(client, key_prefix)
    policy = RateLimitPolicy("default", 2, 1)  # one request every 0.5 s
    assert [(await limiter.hit(policy, "k")).allowed for _ in range(3)] == [True, True, False]
    await asyncio.sleep(0.6)
    assert (await limiter.hit(policy, "k")).allowed


@pytest.mark.parametrize("text", ["50/minute", "50/hour"])
async def test_concurrent_hits_from_several_pools_admit_the_limit_plus_the_refill(
    make_client: ClientFactory, key_prefix: str, text: str
) -> None:
    policy = parse_policy("default", text)
    interval_s = gcra_parameters(policy).interval_us / 1_000_000
    limiters = [
        RedisRateLimiter(
            await make_client(max_connections=8, timeout_seconds=30, socket_timeout=30), key_prefix
        )
        for _ in range(3)
    ]
    await asyncio.gather(*(limiter.hit(policy, "warm-up") for limiter in limiters))

    started = time.monotonic()
    decisions = await asyncio.gather(
        *(limiters[i % 3].hit(policy, "shared-subject") for i in range(300))
    )
    burst_seconds = time.monotonic() - started

    admitted = sum(d.allowed for d in decisions)
    # GCRA refills one request per interval while the burst lasts (measured client-side, which
    # covers the server-side span): 50/minute -> one per 1.2 s, 50/hour -> one per 72 s.
    refill_bound = int(burst_seconds // interval_s)
    assert 50 <= admitted <= 50 + refill_bound
    refused = [d for d in decisions if not d.allowed]
    assert len(refused) == 300 - admitted
    assert all(d.remaining == 0 and d.retry_after >= 1 for d in refused)
    assert all(d.limit == 50 for d in decisions)
