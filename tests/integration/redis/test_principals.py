"""The Redis principal cache: shared entries, TTL, eviction by credential across clients."""

from __future__ import annotations

from adapters.redis.principals import RedisPrincipalCache
from domain.auth import Principal, PrincipalKind, Scope
from domain.ports import RateLimitPolicy
from tests.integration.redis.conftest import ClientFactory

POLICY = RateLimitPolicy("default", 10, 60)
PRINCIPAL = Principal(
    "01a200b6-0000-7000-8000-000000000001",
    PrincipalKind.API_KEY,
    frozenset({Scope.TASKS_READ, Scope.KEYS_MANAGE}),
    "01a200b6-0000-7000-8000-0000000000aa",
    "api_key:01a200b6-0000-7000-8000-0000000000aa",
)


async def test_an_entry_is_shared_and_evicted_for_every_process(
    make_client: ClientFactory, key_prefix: str
) -> None:
    one = RedisPrincipalCache(await make_client(), key_prefix, POLICY)
    two = RedisPrincipalCache(await make_client(), key_prefix, POLICY)
    await one.put("hash-a", PRINCIPAL, 60)
    await one.put("hash-b", PRINCIPAL, 60)
    assert await two.get("hash-a") == PRINCIPAL
    await two.evict(PRINCIPAL.credential_id)
    assert await one.get("hash-a") is None
    assert await one.get("hash-b") is None


async def test_entries_expire_and_hold_no_token(
    make_client: ClientFactory, key_prefix: str
) -> None:
    client = await make_client()
    cache = RedisPrincipalCache(client, key_prefix, POLICY)
    await cache.put("hash-c", PRINCIPAL, 7)
    ttl = await client.ttl(cache.entry_key("hash-c"))
    assert 0 < ttl <= 7
    assert await client.ttl(cache.credential_key(PRINCIPAL.credential_id)) > 0
    assert await cache.get("missing") is None
