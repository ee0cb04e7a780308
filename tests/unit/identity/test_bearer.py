"""AuthenticateBearer: sessions, API keys and the service token."""

from datetime import timedelta

import pytest

from domain.auth import ALL_SCOPES, PrincipalKind
from domain.errors import Unauthenticated
from tests.unit.identity.support import SERVICE_TOKEN, Identity, session_principal


async def test_key_last_used_is_written_at_most_once_a_minute(identity: Identity) -> None:
    user = await identity.new_user()
    issued = await identity.issue_key().execute(session_principal(user), "k", ["tasks:read"])
    assert issued.key.last_used_at is None

    def stored_last_used() -> object:
        return identity.db.tables["api_keys"][issued.key.id].last_used_at

    first_use = identity.clock.now()
    await identity.authenticate().execute(issued.secret)
    assert stored_last_used() == first_use
    before = identity.db.tables["api_keys"][issued.key.id]

    identity.clock.advance(seconds=59)
    await identity.authenticate().execute(issued.secret)
    # No write at all: the very same row object is still there.
    assert identity.db.tables["api_keys"][issued.key.id] is before

    identity.clock.advance(seconds=1)
    await identity.authenticate().execute(issued.secret)
    assert stored_last_used() == first_use + timedelta(seconds=60)


@pytest.mark.parametrize(
    "token", ["", "garbage", "thk_", "thk_unknownkey", "ths_unknown", "x" * 10_000, "ünïcode"]
)
async def test_unknown_tokens_are_unauthenticated(identity: Identity, token: str) -> None:
    await identity.new_user()
    with pytest.raises(Unauthenticated):
        await identity.authenticate().execute(token)


async def test_service_token_acts_for_an_existing_user(identity: Identity) -> None:
    user = await identity.new_user()

    principal = await identity.authenticate().execute(SERVICE_TOKEN, user.id.upper())

    assert principal.user_id == user.id
    assert principal.kind is PrincipalKind.SERVICE
    assert principal.scopes == ALL_SCOPES
    assert (principal.credential_id, principal.actor) == ("service", "service")


@pytest.mark.parametrize("acting", [None, "", "not-a-uuid", "00000000-0000-7000-8000-000000000000"])
async def test_service_token_without_a_real_acting_user_is_refused(
    identity: Identity, acting: str | None
) -> None:
    await identity.new_user()
    with pytest.raises(Unauthenticated):
        await identity.authenticate().execute(SERVICE_TOKEN, acting)


@pytest.mark.parametrize(
    "token", [SERVICE_TOKEN + "x", SERVICE_TOKEN[:-1], SERVICE_TOKEN.upper(), " " + SERVICE_TOKEN]
)
async def test_a_near_miss_of_the_service_token_is_refused(identity: Identity, token: str) -> None:
    user = await identity.new_user()
    with pytest.raises(Unauthenticated):
        await identity.authenticate().execute(token, user.id)


async def test_service_token_is_refused_when_none_is_configured(identity: Identity) -> None:
    user = await identity.new_user()
    with pytest.raises(Unauthenticated):
        await identity.authenticate(service_token=None).execute(SERVICE_TOKEN, user.id)
    with pytest.raises(Unauthenticated):
        await identity.authenticate(service_token="").execute("", user.id)


async def test_acting_user_is_ignored_for_a_session_token(identity: Identity) -> None:
    ada = await identity.new_user()
    bob = await identity.new_user("bob@example.com")
    login = await identity.login().execute("ada@example.com", "correct horse battery", "10.0.0.1")

    principal = await identity.authenticate().execute(login.token, bob.id)

    assert principal.user_id == ada.id
    assert principal.kind is PrincipalKind.SESSION
