"""Admission on Redis: the gate (cached principal + rate-limit decision in one script, sharing
the buckets of RedisRateLimiter and the entries of RedisPrincipalCache) and its fallback."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.exceptions import RedisError

from adapters.redis.admission import RedisAdmission, RedisRequestGate
from adapters.redis.client import create_redis_client
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
    policy = RateLimitPolicy("gate-test", 3, 60)
    cache = RedisPrincipalCache(client, key_prefix, policy)
    gate = RedisRequestGate(client, cache)
    limiter = RedisRateLimiter(client, key_prefix)

    assert await gate.admit("token-hash") is None  # a miss counts nothing
    await cache.put("token-hash", principal, 60)

    first = await gate.admit("token-hash")
    assert first is not None
    assert first[0] == principal
    assert (first[1].allowed, first[1].remaining) == (True, 2)
    # The limiter sees the same bucket: the one Python named when the entry was cached.
    second = await limiter.hit(policy, principal.rate_limit_subject)
    assert (second.allowed, second.remaining) == (True, 1)
    await gate.admit("token-hash")
    refused = await gate.admit("token-hash")
    assert refused is not None
    assert not refused[1].allowed
    assert refused[1].retry_after >= 1


async def test_a_charge_counts_more_in_the_bucket_the_gate_counts_in(
    make_client: ClientFactory, key_prefix: str
) -> None:
    client = await make_client()
    principal = Principal(USER, PrincipalKind.API_KEY, ALL_SCOPES, CRED, "actor")
    policy = RateLimitPolicy("charge-test", 10, 60)
    cache = RedisPrincipalCache(client, key_prefix, policy)
    await cache.put("token-hash", principal, 60)
    admission = RedisAdmission(
        RedisRequestGate(client, cache),
        cache_key=lambda token, _acting: token,
        authenticate=_never,
        limiter=RedisRateLimiter(client, key_prefix),
        counted=lambda _allowed: None,
    )
    _, admitted = await admission.admit("token-hash", None)
    assert admitted.remaining == 9
    charged = await admission.charge(principal, 3)
    assert (charged.allowed, charged.remaining) == (True, 6)
    refused = await admission.charge(principal, 7)  # all or nothing
    assert (refused.allowed, refused.remaining) == (False, 0)
    _, after = await admission.admit("token-hash", None)
    assert after.remaining == 5


async def _never(token: str, acting_user: str | None) -> Principal:
    raise AssertionError("the gate should have answered from the cache")


async def test_an_evicted_principal_is_a_miss(make_client: ClientFactory, key_prefix: str) -> None:
    client = await make_client()
    principal = Principal(USER, PrincipalKind.SESSION, ALL_SCOPES, CRED, "actor")
    cache = RedisPrincipalCache(client, key_prefix, RateLimitPolicy("p", 5, 60))
    await cache.put("h", principal, 60)
    await cache.evict(CRED)
    assert await RedisRequestGate(client, cache).admit("h") is None


async def test_calls_in_one_loop_turn_share_one_pipeline_and_each_is_counted(
    make_client: ClientFactory, key_prefix: str
) -> None:
    client = await make_client()
    principal = Principal(USER, PrincipalKind.API_KEY, ALL_SCOPES, CRED, "actor")
    policy = RateLimitPolicy("batch", 30, 60)
    cache = RedisPrincipalCache(client, key_prefix, policy)
    await cache.put("batch", principal, 60)
    gate = RedisRequestGate(client, cache)
    pipelines = _count_pipelines(client)

    answers = await asyncio.gather(*(gate.admit("batch") for _ in range(50)))

    assert pipelines == [50]  # one round trip for the 50 calls
    decisions = [answer[1] for answer in answers if answer is not None]
    assert len(decisions) == 50
    assert all(answer is not None and answer[0] == principal for answer in answers)
    assert sum(d.allowed for d in decisions) == 30  # every call counted once, none lost
    assert sorted(d.remaining for d in decisions if d.allowed) == list(range(30))


async def test_a_long_queue_is_sent_in_bounded_pipelines(
    make_client: ClientFactory, key_prefix: str
) -> None:
    client = await make_client()
    principal = Principal(USER, PrincipalKind.SESSION, ALL_SCOPES, CRED, "actor")
    policy = RateLimitPolicy("bounded", 100, 60)
    cache = RedisPrincipalCache(client, key_prefix, policy)
    await cache.put("hit", principal, 60)
    gate = RedisRequestGate(client, cache, max_batch=4)
    pipelines = _count_pipelines(client)

    answers = await asyncio.gather(*(gate.admit("hit" if i % 2 else "miss") for i in range(10)))

    assert pipelines == [4, 4, 2]
    # Hits and misses in one pipeline each get their own answer.
    assert [answer is None for answer in answers] == [i % 2 == 0 for i in range(10)]
    assert sorted(a[1].remaining for a in answers if a is not None) == list(range(95, 100))


async def test_the_script_is_loaded_again_after_redis_forgot_it(
    make_client: ClientFactory, key_prefix: str
) -> None:
    client = await make_client()
    principal = Principal(USER, PrincipalKind.SESSION, ALL_SCOPES, CRED, "actor")
    policy = RateLimitPolicy("reload", 5, 60)
    cache = RedisPrincipalCache(client, key_prefix, policy)
    await cache.put("h", principal, 60)
    gate = RedisRequestGate(client, cache)
    assert await gate.admit("h") is not None
    await client.script_flush()  # as after a Redis restart

    answers = await asyncio.gather(gate.admit("h"), gate.admit("h"))

    assert [a[1].remaining for a in answers if a is not None] == [3, 2]


async def test_an_unreachable_redis_fails_every_waiting_call(key_prefix: str) -> None:
    client = create_redis_client("redis://127.0.0.1:1/0", timeout_seconds=0.2, socket_timeout=0.2)
    try:
        gate = RedisRequestGate(
            client, RedisPrincipalCache(client, key_prefix, RateLimitPolicy("down", 5, 60))
        )
        results = await asyncio.gather(*(gate.admit("h") for _ in range(3)), return_exceptions=True)
        assert all(isinstance(r, RedisError) for r in results), results
    finally:
        await client.aclose()


async def test_a_caller_that_goes_away_does_not_disturb_the_others(
    make_client: ClientFactory, key_prefix: str
) -> None:
    client = await make_client()
    principal = Principal(USER, PrincipalKind.SESSION, ALL_SCOPES, CRED, "actor")
    policy = RateLimitPolicy("cancel", 10, 60)
    cache = RedisPrincipalCache(client, key_prefix, policy)
    await cache.put("h", principal, 60)
    gate = RedisRequestGate(client, cache)
    leaving = asyncio.ensure_future(gate.admit("h"))
    staying = asyncio.ensure_future(gate.admit("h"))
    await asyncio.sleep(0)
    leaving.cancel()

    answer = await staying

    assert answer is not None
    assert answer[1].allowed
    assert leaving.cancelled()


def _count_pipelines(client: Redis) -> list[int]:
    """Record the number of commands of each pipeline the client sends."""
    sizes: list[int] = []
    make_pipeline = client.pipeline

    def pipeline(*args: Any, **kwargs: Any) -> Any:
        pipe = make_pipeline(*args, **kwargs)
        execute = pipe.execute

        async def counted(*a: Any, **k: Any) -> Any:
            sizes.append(len(pipe.command_stack))
            return await execute(*a, **k)

        pipe.execute = counted  # type: ignore[method-assign]
        return pipe

    client.pipeline = pipeline  # type: ignore[method-assign]
    return sizes


async def test_calls_of_the_next_loop_turn_join_the_same_pipeline(
    make_client: ClientFactory, key_prefix: str
) -> None:
    client = await make_client()
    principal = Principal(USER, PrincipalKind.SESSION, ALL_SCOPES, CRED, "actor")
    policy = RateLimitPolicy("turns", 10, 60)
    cache = RedisPrincipalCache(client, key_prefix, policy)
    await cache.put("turns", principal, 60)
    gate = RedisRequestGate(client, cache)
    pipelines = _count_pipelines(client)

    first = asyncio.ensure_future(gate.admit("turns"))
    await asyncio.sleep(0)  # the first call reaches the gate in this turn
    second = asyncio.ensure_future(gate.admit("turns"))
    answers = await asyncio.gather(first, second)

    assert pipelines == [2]
    assert [a[1].remaining for a in answers if a is not None] == [9, 8]


async def test_admission_fills_the_cache_on_a_miss_and_the_gate_serves_the_next_call(
    make_client: ClientFactory, key_prefix: str
) -> None:
    from datetime import timedelta

    from domain.use_cases.identity import AuthenticateBearer
    from tests.unit.identity.support import PASSWORD, Identity

    client = await make_client()
    identity = Identity()
    await identity.new_user()
    login = await identity.login().execute("ada@example.com", PASSWORD, "10.0.0.1")
    policy = RateLimitPolicy("admission", 5, 60)
    cache = RedisPrincipalCache(client, key_prefix, policy)
    lookups: list[int] = []

    def uow() -> Any:
        lookups.append(1)
        return identity.uow()

    authenticate = AuthenticateBearer(
        uow, identity.tokens, identity.clock, cache=cache, cache_ttl=timedelta(seconds=60)
    )
    gate_decisions: list[bool] = []
    admission = RedisAdmission(
        RedisRequestGate(client, cache),
        cache_key=authenticate.cache_key,
        authenticate=authenticate.execute,
        limiter=RedisRateLimiter(client, key_prefix),
        counted=gate_decisions.append,
    )

    first, missed = await admission.admit(login.token, None)  # the database, then cached
    second, hit = await admission.admit(login.token, None)  # the gate alone

    assert first == second
    assert len(lookups) == 1
    assert gate_decisions == [True]  # the limiter took the first decision, the gate the second
    assert (missed.remaining, hit.remaining) == (4, 3)  # one bucket for both paths


async def test_every_credential_of_a_user_counts_in_one_bucket(
    make_client: ClientFactory, key_prefix: str
) -> None:
    client = await make_client()
    policy = RateLimitPolicy("per-user", 3, 60)
    cache = RedisPrincipalCache(client, key_prefix, policy)
    gate = RedisRequestGate(client, cache)
    for kind in PrincipalKind:
        await cache.put(kind.value, Principal(USER, kind, ALL_SCOPES, f"cred-{kind}", "a"), 60)

    answers = [await gate.admit(kind.value) for kind in PrincipalKind]

    assert [a[1].remaining for a in answers if a is not None] == [2, 1, 0]
