"""RegisterUser, LogIn, LogOut and GetCurrentUser over the memory adapters."""

from datetime import timedelta

import pytest

from domain.auth import ALL_SCOPES, PrincipalKind
from domain.errors import Conflict, Forbidden, Invalid, RateLimited, Unauthenticated
from domain.ports import RateLimitPolicy
from domain.projects import Role
from domain.use_cases.identity import GetCurrentUser, LogOut
from tests.unit.identity.support import PASSWORD, Identity, cheap_hasher, key_principal


async def test_register_stores_a_user_with_an_argon2id_hash(identity: Identity) -> None:
    user = await identity.register().execute(" Ada@Example.COM ", PASSWORD, " Ada ")

    assert (user.email, user.name, user.created_at) == (
        "Ada@example.com",
        "Ada",
        identity.clock.now(),
    )
    assert user.password_hash.startswith("$argon2id$")
    assert PASSWORD not in user.password_hash
    assert identity.db.tables["users"] == {user.id: user}


async def test_register_opens_the_users_inbox_in_the_same_transaction(
    identity: Identity,
) -> None:
    user = await identity.register().execute("ada@example.com", PASSWORD)
    async with identity.uow() as uow:
        inbox = await uow.projects.inbox_of(user.id)
        assert inbox is not None
        assert (inbox.name, inbox.inbox, inbox.created_at) == ("Inbox", True, user.created_at)
        membership = await uow.memberships.get(inbox.id, user.id)
    assert membership is not None
    assert membership.role is Role.OWNER
    # A refused sign-up leaves no inbox behind.
    with pytest.raises(Conflict):
        await identity.register().execute("ADA@example.com", PASSWORD)
    assert len(identity.db.tables["projects"]) == 1


async def test_register_refuses_an_email_taken_in_another_case(identity: Identity) -> None:
    await identity.register().execute("ada@example.com", PASSWORD)

    with pytest.raises(Conflict):
        await identity.register().execute("ADA@EXAMPLE.com", PASSWORD)
    assert len(identity.db.tables["users"]) == 1


async def test_the_repository_itself_refuses_a_duplicate_email_key(identity: Identity) -> None:
    user = await identity.new_user("ada@example.com")
    uow = identity.uow()
    async with uow:
        twin = type(user)("other-id", "ADA@example.com", None, "h", user.created_at)
        with pytest.raises(Conflict):
            await uow.users.add(twin)


async def test_register_when_signup_is_disabled_is_forbidden(identity: Identity) -> None:
    with pytest.raises(Forbidden):
        await identity.register(allow_signup=False).execute("ada@example.com", PASSWORD)
    assert identity.db.tables["users"] == {}


async def test_register_names_every_bad_field_at_once(identity: Identity) -> None:
    with pytest.raises(Invalid) as caught:
        await identity.register().execute("ada\u200b@example.com", "short", "  ")

    assert [e.field for e in caught.value.errors] == ["email", "password", "name"]
    assert identity.db.tables["users"] == {}


@pytest.mark.parametrize(("length", "ok"), [(7, False), (8, True), (128, True), (129, False)])
async def test_register_password_bounds(identity: Identity, length: int, ok: bool) -> None:
    use_case = identity.register()
    password = ("Pq3!" * 40)[:length]  # ("pppppppp" is one of the common passwords)
    if ok:
        await use_case.execute("ada@example.com", password)
    else:
        with pytest.raises(Invalid):
            await use_case.execute("ada@example.com", password)


async def test_login_opens_a_session_and_returns_its_token(identity: Identity) -> None:
    user = await identity.new_user()

    result = await identity.login(session_ttl=timedelta(hours=2)).execute(
        "ADA@example.com", PASSWORD, "10.0.0.1"
    )

    assert result.user == user
    assert result.expires_at == identity.clock.now() + timedelta(hours=2)
    assert result.token not in repr(result)
    (session,) = identity.db.tables["sessions"].values()
    assert session.user_id == user.id
    assert session.token_hash == identity.tokens.hash(result.token)
    assert result.token not in repr(session)
    principal = await identity.authenticate().execute(result.token)
    assert (principal.user_id, principal.kind, principal.scopes) == (
        user.id,
        PrincipalKind.SESSION,
        ALL_SCOPES,
    )


class SpyHasher:
    """Counts the slow operations of the real hasher it wraps."""

    def __init__(self) -> None:
        self.real = cheap_hasher()
        self.slow_calls = 0

    async def hash(self, password: str) -> str:
        self.slow_calls += 1
        return await self.real.hash(password)

    async def verify(self, password_hash: str, password: str) -> bool:
        self.slow_calls += 1
        return await self.real.verify(password_hash, password)

    def needs_rehash(self, password_hash: str) -> bool:
        return self.real.needs_rehash(password_hash)


@pytest.mark.parametrize(
    ("email", "password"),
    [
        ("ada@example.com", "wrong password"),
        ("nobody@example.com", PASSWORD),
        ("not an e-mail", PASSWORD),
        ("ada@example.com", "x" * 10_000),
    ],
)
async def test_failed_logins_look_alike_and_cost_one_slow_hash(
    identity: Identity, email: str, password: str
) -> None:
    await identity.new_user()
    spy = SpyHasher()
    identity.hasher = spy  # type: ignore[assignment]

    with pytest.raises(Unauthenticated) as caught:
        await identity.login().execute(email, password, "10.0.0.1")

    assert caught.value.detail == "invalid e-mail or password"
    assert spy.slow_calls == 1
    assert identity.db.tables["sessions"] == {}


async def test_login_rehashes_when_the_parameters_changed(identity: Identity) -> None:
    user = await identity.new_user()
    identity.hasher = cheap_hasher(time_cost=2)

    await identity.login().execute("ada@example.com", PASSWORD, "10.0.0.1")

    stored = identity.db.tables["users"][user.id]
    assert stored.password_hash != user.password_hash
    assert "t=2" in stored.password_hash
    assert not identity.hasher.needs_rehash(stored.password_hash)
    # The new hash still accepts the password.
    await identity.login().execute("ada@example.com", PASSWORD, "10.0.0.1")


async def test_login_keeps_a_current_hash(identity: Identity) -> None:
    user = await identity.new_user()
    await identity.login().execute("ada@example.com", PASSWORD, "10.0.0.1")
    assert identity.db.tables["users"][user.id].password_hash == user.password_hash


async def test_login_is_limited_per_email_across_addresses(identity: Identity) -> None:
    await identity.new_user()
    per_email = RateLimitPolicy("login-email", limit=3, window_seconds=60)
    for n in range(3):
        with pytest.raises(Unauthenticated):
            await identity.login(per_email=per_email).execute(
                "ADA@example.com", "wrong password", f"10.0.0.{n}"
            )

    with pytest.raises(RateLimited) as caught:
        await identity.login(per_email=per_email).execute("ada@example.com", PASSWORD, "10.9.9.9")
    assert caught.value.retry_after == 60
    assert identity.db.tables["sessions"] == {}
    # Another account from a fresh address is not affected, and the e-mail is not kept in clear.
    await identity.new_user("bob@example.com")
    await identity.login(per_email=per_email).execute("bob@example.com", PASSWORD, "10.9.9.9")
    assert not any("ada" in key for _, key in identity.limiter.counts)


async def test_login_is_limited_per_client_address_across_emails(identity: Identity) -> None:
    await identity.new_user()
    per_address = RateLimitPolicy("login-address", limit=2, window_seconds=30)
    for email in ("x@example.com", "y@example.com"):
        with pytest.raises(Unauthenticated):
            await identity.login(per_address=per_address).execute(email, PASSWORD, "10.0.0.1")

    with pytest.raises(RateLimited) as caught:
        await identity.login(per_address=per_address).execute(
            "ada@example.com", PASSWORD, "10.0.0.1"
        )
    assert caught.value.retry_after == 30
    await identity.login(per_address=per_address).execute("ada@example.com", PASSWORD, "10.0.0.2")


async def test_logout_stops_the_token_at_once(identity: Identity) -> None:
    await identity.new_user()
    result = await identity.login().execute("ada@example.com", PASSWORD, "10.0.0.1")
    principal = await identity.authenticate().execute(result.token)

    await LogOut(identity.uow(), identity.clock).execute(principal)

    with pytest.raises(Unauthenticated):
        await identity.authenticate().execute(result.token)
    assert identity.db.tables["sessions"][result.session_id].revoked_at == identity.clock.now()


async def test_logout_with_an_api_key_is_forbidden(identity: Identity) -> None:
    user = await identity.new_user()
    with pytest.raises(Forbidden):
        await LogOut(identity.uow(), identity.clock).execute(key_principal(user))


async def test_an_expired_session_is_refused(identity: Identity) -> None:
    await identity.new_user()
    login = identity.login(session_ttl=timedelta(minutes=30))
    result = await login.execute("ada@example.com", PASSWORD, "10.0.0.1")

    identity.clock.advance(minutes=29, seconds=59)
    await identity.authenticate().execute(result.token)
    identity.clock.advance(seconds=1)
    with pytest.raises(Unauthenticated):
        await identity.authenticate().execute(result.token)


def test_a_non_positive_session_ttl_is_a_configuration_error(identity: Identity) -> None:
    with pytest.raises(ValueError, match="session_ttl"):
        identity.login(session_ttl=timedelta(0))


async def test_current_user_is_the_principals_user(identity: Identity) -> None:
    user = await identity.new_user()
    other = await identity.new_user("bob@example.com")

    assert await GetCurrentUser(identity.uow()).execute(key_principal(user)) == user
    assert await GetCurrentUser(identity.uow()).execute(key_principal(other)) == other


async def test_current_user_that_vanished_is_unauthenticated(identity: Identity) -> None:
    user = await identity.new_user()
    identity.db.tables["users"].clear()
    with pytest.raises(Unauthenticated):
        await GetCurrentUser(identity.uow()).execute(key_principal(user))
