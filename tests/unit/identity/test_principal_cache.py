"""Authentication through the principal cache: no lookup on a hit, eviction acts at once."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from adapters.memory.principals import MemoryPrincipalCache
from domain.auth import Principal, PrincipalKind, Scope
from domain.errors import Unauthenticated
from domain.ports.identity import PrincipalCache
from domain.use_cases.identity import AuthenticateBearer, IssueApiKey, LogOut, RevokeApiKey
from tests.unit.identity.support import PASSWORD, Identity, PausedFill, session_principal


class CountingUow:
    """Counts how many units of work authentication opens (each one is a database trip)."""

    def __init__(self, identity: Identity) -> None:
        self.identity = identity
        self.opened = 0

    def __call__(self) -> object:
        self.opened += 1
        return self.identity.uow()


def cached_auth(identity: Identity, cache: PrincipalCache, uows: CountingUow) -> AuthenticateBearer:
    return AuthenticateBearer(
        uows,  # type: ignore[arg-type]
        identity.tokens,
        identity.clock,
        cache=cache,
        cache_ttl=timedelta(seconds=60),
    )


async def test_a_cached_session_needs_no_lookup_and_logout_evicts(identity: Identity) -> None:
    await identity.new_user()
    login = await identity.login().execute("ada@example.com", PASSWORD, "10.0.0.1")
    cache, uows = MemoryPrincipalCache(), CountingUow(identity)
    auth = cached_auth(identity, cache, uows)

    first = await auth.execute(login.token)
    second = await auth.execute(login.token)
    assert first == second
    assert uows.opened == 1

    await LogOut(identity.uow(), identity.clock, cache).execute(first)
    with pytest.raises(Unauthenticated):
        await auth.execute(login.token)


async def test_revoking_a_key_evicts_it_at_once(identity: Identity) -> None:
    user = await identity.new_user()
    issued = await identity.issue_key().execute(
        session_principal(user), "ci", ["tasks:read", "keys:manage"]
    )
    cache, uows = MemoryPrincipalCache(), CountingUow(identity)
    auth = cached_auth(identity, cache, uows)
    principal = await auth.execute(issued.secret)
    assert principal.kind is PrincipalKind.API_KEY
    await RevokeApiKey(identity.uow(), identity.clock, cache).execute(
        session_principal(user), issued.key.id
    )
    with pytest.raises(Unauthenticated):
        await auth.execute(issued.secret)


async def test_cache_never_outlives_the_credential(identity: Identity) -> None:
    user = await identity.new_user()
    expires = identity.clock.now() + timedelta(seconds=5)
    issued = await identity.issue_key().execute(
        session_principal(user), "short", ["tasks:read"], expires
    )
    now = [0.0]
    cache = MemoryPrincipalCache(monotonic=lambda: now[0])
    auth = cached_auth(identity, cache, CountingUow(identity))
    await auth.execute(issued.secret)
    now[0] += 6  # the cache entry was given the key's 5 s of life, not the 60 s default
    identity.clock.advance(seconds=6)
    with pytest.raises(Unauthenticated):
        await auth.execute(issued.secret)


async def test_memory_cache_bounds_and_expiry() -> None:
    now = [0.0]
    cache = MemoryPrincipalCache(max_entries=2, monotonic=lambda: now[0])
    principals = [
        Principal(f"u{i}", PrincipalKind.SESSION, frozenset({Scope.TASKS_READ}), f"s{i}", "a")
        for i in range(3)
    ]
    for i, principal in enumerate(principals):
        await cache.put(f"k{i}", principal, ttl_seconds=10)
    assert len(cache) == 2
    assert await cache.get("k0") is None  # the oldest went first
    assert await cache.get("k2") == principals[2]
    now[0] = 10.0
    assert await cache.get("k2") is None
    await cache.put("k1", principals[1], 10)
    await cache.evict("s1")
    assert await cache.get("k1") is None


def test_the_redis_entry_format_round_trips_and_its_decode_cache_stays_bounded() -> None:
    from adapters.redis import principals as wire

    decoded = []
    for i in range(wire._DECODED_MAX + 10):
        principal = Principal(
            f"user-{i}", PrincipalKind.API_KEY, frozenset({Scope.TASKS_READ}), f"key-{i}", "a"
        )
        raw = wire.encode_principal(principal)
        assert wire.decode_principal(raw) == principal
        decoded.append(raw)
        assert len(wire._decoded) <= wire._DECODED_MAX
    # A repeat is served from the cache: the very same immutable object.
    last = decoded[-1]
    assert wire.decode_principal(last) is wire.decode_principal(last)


async def test_a_logout_during_a_cache_fill_wins(identity: Identity) -> None:
    await identity.new_user()
    login = await identity.login().execute("ada@example.com", PASSWORD, "10.0.0.1")
    principal = await identity.authenticate().execute(login.token)
    cache = MemoryPrincipalCache()
    paused = PausedFill(cache)
    auth = cached_auth(identity, paused, CountingUow(identity))

    filling = asyncio.create_task(auth.execute(login.token))
    await paused.reached.wait()  # the session was read as active; its entry is not written yet
    await LogOut(identity.uow(), identity.clock, paused).execute(principal)
    paused.release.set()
    await filling  # admitted: it was authenticated before the logout

    assert await cache.get(identity.tokens.hash(login.token)) is None
    with pytest.raises(Unauthenticated):
        await auth.execute(login.token)


async def test_a_key_revocation_during_a_cache_fill_wins(identity: Identity) -> None:
    user = await identity.new_user()
    issued = await identity.issue_key().execute(session_principal(user), "ci", ["tasks:read"])
    paused = PausedFill(MemoryPrincipalCache())
    auth = cached_auth(identity, paused, CountingUow(identity))

    filling = asyncio.create_task(auth.execute(issued.secret))
    await paused.reached.wait()
    await RevokeApiKey(identity.uow(), identity.clock, paused).execute(
        session_principal(user), issued.key.id
    )
    paused.release.set()
    await filling

    with pytest.raises(Unauthenticated):
        await auth.execute(issued.secret)


async def test_memory_tombstones_expire_and_stay_bounded() -> None:
    now = [0.0]
    cache = MemoryPrincipalCache(max_entries=2, monotonic=lambda: now[0], revoked_seconds=30)
    principal = Principal("u", PrincipalKind.SESSION, frozenset({Scope.TASKS_READ}), "s1", "a")
    await cache.evict("s1")
    await cache.put("k", principal, 10)
    assert await cache.get("k") is None  # revoked: never cached again
    now[0] = 31.0
    await cache.put("k", principal, 10)
    assert await cache.get("k") == principal  # the tombstone has expired
    for i in range(5):
        await cache.evict(f"other-{i}")
    assert cache.tombstones <= 2


async def test_a_cached_restricted_key_keeps_its_projects(identity: Identity) -> None:
    """A principal served from the cache is the one the database gave: a key restricted to
    projects stays restricted on every cached request (else it would reach every project)."""
    user = await identity.new_user()
    projects = frozenset({"01890000-0000-7000-8000-0000000000a1"})

    async def member_of(_user_id: str) -> frozenset[str]:
        return projects

    issued = await IssueApiKey(
        identity.uow(),
        identity.tokens,
        identity.secrets,
        identity.clock,
        identity.ids,
        projects_of=member_of,
    ).execute(session_principal(user), "narrow", ["tasks:read"], project_ids=sorted(projects))
    assert issued.key.project_ids == projects
    cache, uows = MemoryPrincipalCache(), CountingUow(identity)
    auth = cached_auth(identity, cache, uows)
    first = await auth.execute(issued.secret)
    second = await auth.execute(issued.secret)
    assert uows.opened == 1  # the second came from the cache
    assert first.project_ids == second.project_ids == projects


def test_the_redis_entry_format_keeps_project_ids_and_every_scope() -> None:
    from adapters.redis import principals as wire
    from domain.auth import ALL_SCOPES

    for project_ids in (frozenset({"p1", "p2"}), None):
        principal = Principal(
            "user-r", PrincipalKind.API_KEY, ALL_SCOPES, f"key-{project_ids}", "a", project_ids
        )
        assert wire.decode_principal(wire.encode_principal(principal)) == principal
