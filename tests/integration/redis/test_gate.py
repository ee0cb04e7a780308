"""The request gate: cached principal + rate-limit decision in one script, sharing the buckets
of RedisRateLimiter and the entries of RedisPrincipalCache."""

from __future__ import annotations

import pytest

from adapters.redis.gate import RedisRequestGate
from adapters.redis.principals import RedisPrincipalCache
from adapters.redis.rate_limit import RedisRateLimiter
from domain.auth import ALL_SCOPES, Principal, PrincipalKind
from domain.ports import RateLimitPolicy
from tests.integration.redis.conftest import ClientFactory

USER = "01a200b6-0000-7000-8000-000000000001"
CRED = "01a200b6-0000-7000-8000-0000000000aa"


@pytest.mark.parametrize("kind", list(PrincipalKind))
async def test_the_gate_counts_in_the_bucket_the_limiter_uses(
    make_client: ClientFactory, key_prefix: str, kind: PrincipalKind
) -> None:
    client = await make_client()
    principal = Principal(USER, kind, ALL_SCOPES, CRED, "actor")
    cache = RedisPrincipalCache(client, key_prefix)
    gate = RedisRequestGate(client, key_prefix)
    limiter = RedisRateLimiter(client, key_prefix)
    policy = RateLimitPolicy("gate-test", 3, 60)

    assert await gate.admit("token-hash", policy) is None  # a miss counts nothing
    await cache.put("token-hash", principal, 60)

    first = await gate.admit("token-hash", policy)
    assert first is not None
    assert first[0] == principal
    assert (first[1].allowed, first[1].remaining) == (True, 2)
    # The limiter sees the same bucket: the subject rule in Lua matches the domain's.
    second = await limiter.hit(policy, principal.rate_limit_subject)
    assert (second.allowed, second.remaining) == (True, 1)
    await gate.admit("token-hash", policy)
    refused = await gate.admit("token-hash", policy)
    assert refused is not None
    assert not refused[1].allowed
    assert refused[1].retry_after >= 1


async def test_an_evicted_principal_is_a_miss(make_client: ClientFactory, key_prefix: str) -> None:
    client = await make_client()
    principal = Principal(USER, PrincipalKind.SESSION, ALL_SCOPES, CRED, "actor")
    cache = RedisPrincipalCache(client, key_prefix)
    await cache.put("h", principal, 60)
    await cache.evict(CRED)
    assert (
        await RedisRequestGate(client, key_prefix).admit("h", RateLimitPolicy("p", 5, 60)) is None
    )
