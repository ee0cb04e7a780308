"""SQL user, session and API key repositories, and the unit of work, on PostgreSQL and SQLite."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.security.passwords import Argon2idPasswordHasher
from adapters.sql.engine import pool_status
from adapters.sql.uow import SqlUnitOfWork
from domain.api_keys import ApiKey, KeyListPosition
from domain.auth import Scope, Session
from domain.errors import Conflict
from domain.projects import Role
from domain.use_cases.identity import RegisterUser
from tests.integration.sql.conftest import UowFactory, add_user, make_user, new_id
from tests.unit.tasks.fakes import FakeClock

T0 = datetime(2026, 5, 4, 10, 11, 12, 345678, tzinfo=UTC)


def make_session(user_id: str, **changes: object) -> Session:
    session = Session(
        id=new_id(),
        user_id=user_id,
        token_hash=uuid.uuid4().hex * 2,
        created_at=T0,
        expires_at=T0 + timedelta(days=14),
    )
    return replace(session, **changes)  # type: ignore[arg-type]


def make_key(user_id: str, **changes: object) -> ApiKey:
    key = ApiKey(
        id=new_id(),
        user_id=user_id,
        name="ci key",
        prefix="thk_abcdefgh",
        key_hash=uuid.uuid4().hex * 2,
        scopes=frozenset({Scope.TASKS_READ, Scope.KEYS_MANAGE}),
        created_at=T0,
    )
    return replace(key, **changes)  # type: ignore[arg-type]


# --- users ---------------------------------------------------------------------------------------


async def test_user_round_trips_with_aware_exact_times(new_uow: UowFactory) -> None:
    user = await add_user(new_uow, make_user(f"Jürgen.{uuid.uuid4().hex[:6]}@example.com"))
    async with new_uow() as uow:
        stored = await uow.users.get(user.id)
    assert stored == user
    assert stored is not None
    assert stored.created_at.utcoffset() == timedelta(0)
    assert stored.created_at.microsecond == 123456


async def test_get_by_email_is_case_insensitive_beyond_ascii(new_uow: UowFactory) -> None:
    local = f"straße.{uuid.uuid4().hex[:6]}"
    user = await add_user(new_uow, make_user(f"{local}@example.com"))
    async with new_uow() as uow:
        by_upper = await uow.users.get_by_email(f"{local.upper()}@EXAMPLE.COM")
        by_exact = await uow.users.get_by_email(user.email)
        missing = await uow.users.get_by_email(f"other-{local}@example.com")
    # "STRASSE" case-folds to what "straße" does: the same key, the same user.
    assert local.upper().startswith("STRASSE.")
    assert by_upper == user
    assert by_exact == user
    assert missing is None


async def test_duplicate_email_key_is_a_conflict_and_the_transaction_goes_on(
    new_uow: UowFactory,
) -> None:
    first = await add_user(new_uow)
    clash = make_user(first.email.upper())
    other = make_user()
    async with new_uow() as uow:
        with pytest.raises(Conflict):
            await uow.users.add(clash)
        await uow.users.add(other)
        await uow.commit()
    async with new_uow() as uow:
        assert await uow.users.get(clash.id) is None
        assert await uow.users.get(other.id) == other
        assert await uow.users.get_by_email(first.email) == first


async def test_duplicate_user_id_is_a_conflict(new_uow: UowFactory) -> None:
    first = await add_user(new_uow)
    async with new_uow() as uow:
        with pytest.raises(Conflict):
            await uow.users.add(replace(first, email=f"x{uuid.uuid4().hex[:8]}@example.com"))


async def test_unknown_or_malformed_user_id_is_none(new_uow: UowFactory) -> None:
    user = await add_user(new_uow)
    async with new_uow() as uow:
        assert await uow.users.get(new_id()) is None
        assert await uow.users.get("not-a-uuid") is None
        assert await uow.users.get(user.id.upper()) is None


async def test_set_password_hash_replaces_only_that_users_hash(new_uow: UowFactory) -> None:
    user, bystander = await add_user(new_uow), await add_user(new_uow)
    async with new_uow() as uow:
        await uow.users.set_password_hash(user.id, "$argon2id$v=19$new")
        await uow.users.set_password_hash(new_id(), "$argon2id$v=19$ignored")
        await uow.commit()
    async with new_uow() as uow:
        assert await uow.users.get(user.id) == replace(user, password_hash="$argon2id$v=19$new")
        assert await uow.users.get(bystander.id) == bystander


# --- sessions ------------------------------------------------------------------------------------


async def test_session_is_found_by_token_hash_and_revoked_once(new_uow: UowFactory) -> None:
    user = await add_user(new_uow)
    session = make_session(user.id)
    async with new_uow() as uow:
        await uow.sessions.add(session)
        await uow.commit()
    async with new_uow() as uow:
        assert await uow.sessions.get_by_token_hash(session.token_hash) == session
        assert await uow.sessions.get_by_token_hash("0" * 64) is None
        await uow.sessions.revoke(session.id, T0 + timedelta(hours=1))
        await uow.sessions.revoke(session.id, T0 + timedelta(hours=2))
        await uow.sessions.revoke(new_id(), T0)
        await uow.commit()
    async with new_uow() as uow:
        stored = await uow.sessions.get_by_token_hash(session.token_hash)
    assert stored == replace(session, revoked_at=T0 + timedelta(hours=1))


async def test_session_with_a_taken_token_hash_is_a_conflict(new_uow: UowFactory) -> None:
    user = await add_user(new_uow)
    session = make_session(user.id)
    async with new_uow() as uow:
        await uow.sessions.add(session)
        await uow.commit()
    async with new_uow() as uow:
        with pytest.raises(Conflict):
            await uow.sessions.add(make_session(user.id, token_hash=session.token_hash))


# --- API keys ------------------------------------------------------------------------------------


async def test_key_round_trips_and_is_found_by_hash(new_uow: UowFactory) -> None:
    user = await add_user(new_uow)
    key = make_key(
        user.id,
        scopes=frozenset(Scope),
        expires_at=T0 + timedelta(days=30),
        last_used_at=T0 + timedelta(seconds=5),
    )
    async with new_uow() as uow:
        await uow.api_keys.add(key)
        await uow.commit()
    async with new_uow() as uow:
        assert await uow.api_keys.get_by_hash(key.key_hash) == key
        assert await uow.api_keys.get_by_hash("f" * 64) is None


async def test_list_page_is_newest_first_without_revoked_keys(new_uow: UowFactory) -> None:
    user, other = await add_user(new_uow), await add_user(new_uow)
    same_time = [make_key(user.id, created_at=T0 + timedelta(minutes=1)) for _ in range(3)]
    oldest = make_key(user.id, created_at=T0)
    expired = make_key(user.id, created_at=T0 + timedelta(minutes=2), expires_at=T0)
    revoked = make_key(user.id, created_at=T0 + timedelta(minutes=3), revoked_at=T0)
    foreign = make_key(other.id)
    async with new_uow() as uow:
        for key in [*same_time, revoked, expired, oldest, foreign]:
            await uow.api_keys.add(key)
        await uow.commit()
    async with new_uow() as uow:
        listed = await uow.api_keys.list_page(user.id, None, 10)
    ties = sorted(same_time, key=lambda k: k.id, reverse=True)
    assert listed == [expired, *ties, oldest]


async def test_get_for_user_is_scoped_to_the_owner_and_sees_revoked_keys(
    new_uow: UowFactory,
) -> None:
    owner, stranger = await add_user(new_uow), await add_user(new_uow)
    key = make_key(owner.id, revoked_at=T0)
    async with new_uow() as uow:
        await uow.api_keys.add(key)
        await uow.commit()
    async with new_uow() as uow:
        assert await uow.api_keys.get_for_user(owner.id, key.id) == key
        assert await uow.api_keys.get_for_user(stranger.id, key.id) is None
        assert await uow.api_keys.get_for_user(owner.id, "nope") is None


async def test_revoke_keeps_the_first_time_and_touch_always_writes(new_uow: UowFactory) -> None:
    user = await add_user(new_uow)
    key = make_key(user.id)
    async with new_uow() as uow:
        await uow.api_keys.add(key)
        await uow.commit()
    async with new_uow() as uow:
        await uow.api_keys.touch_last_used(key.id, T0 + timedelta(minutes=10))
        await uow.api_keys.touch_last_used(key.id, T0 + timedelta(minutes=5))  # no "only newer"
        await uow.api_keys.revoke(key.id, T0 + timedelta(hours=1))
        await uow.api_keys.revoke(key.id, T0 + timedelta(hours=2))
        await uow.api_keys.revoke(new_id(), T0)
        await uow.commit()
    async with new_uow() as uow:
        stored = await uow.api_keys.get_for_user(user.id, key.id)
        listed = await uow.api_keys.list_page(user.id, None, 10)
    assert stored == replace(
        key, last_used_at=T0 + timedelta(minutes=5), revoked_at=T0 + timedelta(hours=1)
    )
    assert listed == []


async def test_key_with_a_taken_hash_is_a_conflict(new_uow: UowFactory) -> None:
    user = await add_user(new_uow)
    key = make_key(user.id)
    async with new_uow() as uow:
        await uow.api_keys.add(key)
        await uow.commit()
    async with new_uow() as uow:
        with pytest.raises(Conflict):
            await uow.api_keys.add(make_key(user.id, key_hash=key.key_hash))


# --- unit of work --------------------------------------------------------------------------------


async def test_leaving_without_commit_rolls_back(new_uow: UowFactory) -> None:
    user = make_user()
    async with new_uow() as uow:
        await uow.users.add(user)
    async with new_uow() as uow:
        assert await uow.users.get(user.id) is None


async def test_an_exception_rolls_back_and_returns_the_connection(
    new_uow: UowFactory, engine: AsyncEngine
) -> None:
    user = make_user()

    async def fail_midway() -> None:
        async with new_uow() as uow:
            await uow.users.add(user)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await fail_midway()
    assert pool_status(engine)[0] == 0
    async with new_uow() as uow:
        assert await uow.users.get(user.id) is None


async def test_rollback_discards_and_commit_after_it_keeps_later_work(
    new_uow: UowFactory,
) -> None:
    dropped, kept = make_user(), make_user()
    async with new_uow() as uow:
        await uow.users.add(dropped)
        await uow.rollback()
        await uow.users.add(kept)
        await uow.commit()
    async with new_uow() as uow:
        assert await uow.users.get(dropped.id) is None
        assert await uow.users.get(kept.id) == kept


async def test_work_is_invisible_to_others_until_commit(new_uow: UowFactory) -> None:
    user = make_user()
    async with new_uow() as writer:
        await writer.users.add(user)
        async with new_uow() as reader:
            assert await reader.users.get(user.id) is None
        await writer.commit()
    async with new_uow() as reader:
        assert await reader.users.get(user.id) == user


# --- API key lineage and the key list ------------------------------------------------------------


async def test_created_by_key_id_round_trips(new_uow: UowFactory) -> None:
    user = await add_user(new_uow)
    parent = make_key(user.id)
    child = make_key(user.id, created_by_key_id=parent.id, expires_at=T0 + timedelta(days=1))
    async with new_uow() as uow:
        await uow.api_keys.add(parent)
        await uow.api_keys.add(child)
        await uow.commit()
    async with new_uow() as uow:
        assert await uow.api_keys.get_for_user(user.id, child.id) == child
        assert await uow.api_keys.get_issuer(user.id, parent.id) == parent
        assert await uow.api_keys.get_issuer(user.id, "not-a-uuid") is None


async def test_project_ids_and_every_scope_round_trip(new_uow: UowFactory) -> None:
    """A key restricted to projects reads back restricted (from each lookup), an unrestricted
    one as None (not an empty set, which would reach nothing); every scope survives."""
    user = await add_user(new_uow)
    restricted = make_key(
        user.id, project_ids=frozenset({new_id(), new_id()}), scopes=frozenset(Scope)
    )
    plain = make_key(user.id)
    async with new_uow() as uow:
        await uow.api_keys.add(restricted)
        await uow.api_keys.add(plain)
        await uow.commit()
    async with new_uow() as uow:
        assert await uow.api_keys.get_by_hash(restricted.key_hash) == restricted
        assert await uow.api_keys.get_for_user(user.id, restricted.id) == restricted
        assert await uow.api_keys.get_issuer(user.id, restricted.id) == restricted
        page = await uow.api_keys.list_page(user.id, None, 10)
        assert {k.id: k.project_ids for k in page} == {
            restricted.id: restricted.project_ids,
            plain.id: None,
        }


async def test_revoke_tree_revokes_every_descendant_and_nothing_else(new_uow: UowFactory) -> None:
    user = await add_user(new_uow)
    root = make_key(user.id)
    child = make_key(user.id, created_by_key_id=root.id)
    grandchildren = [make_key(user.id, created_by_key_id=child.id) for _ in range(3)]
    great = make_key(user.id, created_by_key_id=grandchildren[0].id)
    sibling = make_key(user.id)
    nephew = make_key(user.id, created_by_key_id=sibling.id)
    revoked_before = make_key(user.id, created_by_key_id=root.id, revoked_at=T0)
    keys = [root, child, *grandchildren, great, sibling, nephew, revoked_before]
    async with new_uow() as uow:
        for key in keys:
            await uow.api_keys.add(key)
        await uow.commit()

    at = T0 + timedelta(hours=1)
    async with new_uow() as uow:
        revoked = await uow.api_keys.revoke_tree(root.id, at)
        await uow.commit()

    tree = {root.id, child.id, great.id, *(g.id for g in grandchildren)}
    assert revoked[0] == root.id
    assert sorted(revoked) == sorted(tree)
    async with new_uow() as uow:
        stored = {k.id: await uow.api_keys.get_for_user(user.id, k.id) for k in keys}
    assert {i for i, k in stored.items() if k is not None and k.revoked_at == at} == tree
    assert stored[sibling.id].revoked_at is None  # type: ignore[union-attr]
    assert stored[nephew.id].revoked_at is None  # type: ignore[union-attr]
    assert stored[revoked_before.id].revoked_at == T0  # type: ignore[union-attr]


async def test_the_key_list_pages_newest_first_without_revoked_keys(new_uow: UowFactory) -> None:
    user = await add_user(new_uow)
    other = await add_user(new_uow)
    # Two keys share a creation time: the id breaks the tie.
    times = [T0, T0 + timedelta(seconds=1), T0 + timedelta(seconds=1), T0 + timedelta(seconds=2)]
    keys = [make_key(user.id, created_at=t) for t in times]
    revoked = make_key(user.id, created_at=T0 + timedelta(seconds=3), revoked_at=T0)
    foreign = make_key(other.id, created_at=T0 + timedelta(seconds=4))
    async with new_uow() as uow:
        for key in [*keys, revoked, foreign]:
            await uow.api_keys.add(key)
        await uow.commit()

    expected = sorted(keys, key=lambda k: (k.created_at, k.id), reverse=True)
    seen: list[ApiKey] = []
    after = None
    async with new_uow() as uow:
        while True:
            page = await uow.api_keys.list_page(user.id, after, 3)
            seen += page
            if len(page) < 3:
                break
            after = KeyListPosition(page[-1].created_at, page[-1].id)
    assert [k.id for k in seen] == [k.id for k in expected]


async def test_count_active_leaves_out_revoked_and_expired_keys(new_uow: UowFactory) -> None:
    user, other = await add_user(new_uow), await add_user(new_uow)
    now = T0 + timedelta(hours=1)
    keys = [
        make_key(user.id),
        make_key(user.id, expires_at=now + timedelta(seconds=1)),
        make_key(user.id, expires_at=now),  # expired at `now`
        make_key(user.id, revoked_at=T0),
        make_key(other.id),
    ]
    async with new_uow() as uow:
        for key in keys:
            await uow.api_keys.add(key)
        await uow.commit()
    async with new_uow() as uow:
        assert await uow.api_keys.count_active(user.id, now) == 2
        assert await uow.api_keys.count_active("not-a-uuid", now) == 0


async def test_sign_up_commits_the_user_and_their_inbox_together(engine: AsyncEngine) -> None:
    hasher = Argon2idPasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1)
    register = RegisterUser(SqlUnitOfWork(engine), hasher, FakeClock(), _Ids())
    email = f"signup-{uuid.uuid4().hex[:10]}@example.com"
    user = await register.execute(email, "a long enough password")
    async with SqlUnitOfWork(engine) as uow:
        inbox = await uow.projects.inbox_of(user.id)
        assert inbox is not None
        assert (inbox.name, inbox.inbox) == ("Inbox", True)
        membership = await uow.memberships.get(inbox.id, user.id)
        assert membership is not None
        assert membership.role is Role.OWNER
    with pytest.raises(Conflict):
        await register.execute(email.upper(), "a long enough password")


class _Ids:
    def new_id(self) -> str:
        return new_id()
