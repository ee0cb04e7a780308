"""The Redis principal cache: shared entries, TTL, eviction by credential across clients."""

from __future__ import annotations

import asyncio

import pytest

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


async def test_a_revocation_during_a_cache_fill_wins_for_every_process(
    make_client: ClientFactory, key_prefix: str
) -> None:
    """One process reads a session as active and is about to cache it; another logs it out in
    between. The stale principal must not reach the shared cache."""
    from datetime import timedelta

    from domain.errors import Unauthenticated
    from domain.use_cases.identity import AuthenticateBearer, LogOut
    from tests.unit.identity.support import PASSWORD, Identity, PausedFill

    identity = Identity()
    await identity.new_user()
    login = await identity.login().execute("ada@example.com", PASSWORD, "10.0.0.1")
    principal = await identity.authenticate().execute(login.token)
    filler = PausedFill(RedisPrincipalCache(await make_client(), key_prefix, POLICY))
    revoker = RedisPrincipalCache(await make_client(), key_prefix, POLICY)
    auth = AuthenticateBearer(
        identity.uow, identity.tokens, identity.clock, cache=filler, cache_ttl=timedelta(seconds=60)
    )

    filling = asyncio.create_task(auth.execute(login.token))
    await filler.reached.wait()
    await LogOut(identity.uow(), identity.clock, revoker).execute(principal)
    filler.release.set()
    await filling

    assert await revoker.get(identity.tokens.hash(login.token)) is None
    with pytest.raises(Unauthenticated):
        await auth.execute(login.token)


async def test_a_revoked_credential_is_refused_by_put_until_its_tombstone_expires(
    make_client: ClientFactory, key_prefix: str
) -> None:
    client = await make_client()
    cache = RedisPrincipalCache(client, key_prefix, POLICY, revoked_seconds=50)
    await cache.evict(PRINCIPAL.credential_id)
    await cache.put("hash-d", PRINCIPAL, 60)
    assert await cache.get("hash-d") is None
    assert 0 < await client.ttl(cache.revoked_key(PRINCIPAL.credential_id)) <= 50
    await client.delete(cache.revoked_key(PRINCIPAL.credential_id))  # as when it expires
    await cache.put("hash-d", PRINCIPAL, 60)
    assert await cache.get("hash-d") == PRINCIPAL


async def test_a_restricted_keys_projects_survive_the_shared_cache_and_the_gate(
    make_client: ClientFactory, key_prefix: str
) -> None:
    """A key restricted to projects must stay restricted when its principal comes from Redis
    (by `get`, or by the admission gate); so must every scope, the v1.1 ones included."""
    from adapters.redis.admission import RedisRequestGate
    from domain.auth import ALL_SCOPES

    restricted = Principal(
        PRINCIPAL.user_id,
        PrincipalKind.API_KEY,
        ALL_SCOPES,
        "01a200b6-0000-7000-8000-0000000000bb",
        "api_key:01a200b6-0000-7000-8000-0000000000bb",
        frozenset({"01a200b6-0000-7000-8000-0000000000c1", "01a200b6-0000-7000-8000-0000000000c2"}),
    )
    writer = RedisPrincipalCache(await make_client(), key_prefix, POLICY)
    reader = RedisPrincipalCache(await make_client(), key_prefix, POLICY)
    await writer.put("hash-r", restricted, 60)
    read = await reader.get("hash-r")
    assert read == restricted
    assert read is not None
    assert read.project_ids == restricted.project_ids
    admitted = await RedisRequestGate(await make_client(), reader).admit("hash-r")
    assert admitted is not None
    assert admitted[0].project_ids == restricted.project_ids
    assert admitted[0].scopes == ALL_SCOPES
