"""IssueApiKey, ListApiKeys and RevokeApiKey over the memory adapters."""

from datetime import datetime, timedelta

import pytest

from domain.auth import Scope
from domain.errors import Forbidden, Invalid, NotFound, Unauthenticated
from domain.use_cases.identity import ListApiKeys, RevokeApiKey
from tests.unit.identity.support import Identity, key_principal, session_principal

READ, WRITE, MANAGE = Scope.TASKS_READ, Scope.TASKS_WRITE, Scope.KEYS_MANAGE


async def test_a_key_is_shown_once_and_stored_only_as_a_keyed_hash(identity: Identity) -> None:
    user = await identity.new_user()

    issued = await identity.issue_key().execute(
        session_principal(user), "  ci bot ", ["tasks:read", "tasks:write"]
    )

    assert issued.secret.startswith("thk_")
    assert len(issued.secret) >= 4 + 43
    key = issued.key
    assert (key.user_id, key.name, key.scopes) == (user.id, "ci bot", frozenset({READ, WRITE}))
    assert key.prefix == issued.secret[:12]
    assert key.key_hash == identity.tokens.hash(issued.secret)
    assert issued.secret not in repr(issued)
    stored = identity.db.tables["api_keys"][key.id]
    assert stored == key
    # Nothing held in memory contains the secret, except its short display prefix.
    everything = repr(identity.db.tables)
    assert issued.secret not in everything
    assert issued.secret[12:24] not in everything


async def test_the_issued_key_authenticates_with_exactly_its_scopes(identity: Identity) -> None:
    user = await identity.new_user()
    issued = await identity.issue_key().execute(session_principal(user), "reader", ["tasks:read"])

    principal = await identity.authenticate().execute(issued.secret)

    assert principal.user_id == user.id
    assert principal.scopes == frozenset({READ})
    assert (principal.credential_id, principal.actor) == (issued.key.id, f"api_key:{issued.key.id}")
    principal.require(READ)
    with pytest.raises(Forbidden):
        principal.require(WRITE)


async def test_a_key_cannot_grant_scopes_it_does_not_hold(identity: Identity) -> None:
    user = await identity.new_user()
    own = await identity.issue_key().execute(
        session_principal(user), "own", ["tasks:read", "keys:manage"]
    )
    caller = await identity.authenticate().execute(own.secret)

    with pytest.raises(Forbidden, match="tasks:write"):
        await identity.issue_key().execute(caller, "more", ["tasks:read", "tasks:write"])
    assert list(identity.db.tables["api_keys"]) == [own.key.id]
    issued = await identity.issue_key().execute(caller, "same", ["tasks:read", "keys:manage"])
    assert issued.key.scopes == frozenset({READ, MANAGE})


async def test_issuing_needs_keys_manage(identity: Identity) -> None:
    user = await identity.new_user()
    with pytest.raises(Forbidden, match="keys:manage"):
        await identity.issue_key().execute(key_principal(user, READ, WRITE), "x", ["tasks:read"])


@pytest.mark.parametrize(
    ("name", "scopes", "expires_in", "fields"),
    [
        ("", ["tasks:read"], None, ["name"]),
        ("x" * 101, ["tasks:read"], None, ["name"]),
        ("ok", [], None, ["scopes"]),
        ("ok", ["tasks:admin"], None, ["scopes"]),
        ("ok", ["tasks:read"], timedelta(seconds=-1), ["expires_at"]),
        ("ok", ["tasks:read"], timedelta(0), ["expires_at"]),
        ("", ["nope"], timedelta(days=-1), ["name", "scopes", "expires_at"]),
    ],
)
async def test_issue_rejects_bad_fields(
    identity: Identity,
    name: str,
    scopes: list[str],
    expires_in: timedelta | None,
    fields: list[str],
) -> None:
    user = await identity.new_user()
    expires_at = None if expires_in is None else identity.clock.now() + expires_in

    with pytest.raises(Invalid) as caught:
        await identity.issue_key().execute(session_principal(user), name, scopes, expires_at)

    assert [e.field for e in caught.value.errors] == fields
    assert identity.db.tables["api_keys"] == {}


async def test_issue_rejects_an_expiry_without_time_zone(identity: Identity) -> None:
    user = await identity.new_user()
    naive = datetime(2030, 1, 1)
    with pytest.raises(Invalid) as caught:
        await identity.issue_key().execute(session_principal(user), "k", ["tasks:read"], naive)
    assert caught.value.errors[0].field == "expires_at"


async def test_an_expired_key_is_refused(identity: Identity) -> None:
    user = await identity.new_user()
    expires_at = identity.clock.now() + timedelta(hours=1)
    issued = await identity.issue_key().execute(
        session_principal(user), "short", ["tasks:read"], expires_at
    )
    assert issued.key.expires_at == expires_at

    identity.clock.advance(minutes=59)
    await identity.authenticate().execute(issued.secret)
    identity.clock.advance(minutes=1)
    with pytest.raises(Unauthenticated):
        await identity.authenticate().execute(issued.secret)


async def test_list_shows_only_the_callers_live_keys_newest_first(identity: Identity) -> None:
    ada = await identity.new_user()
    bob = await identity.new_user("bob@example.com")
    first = await identity.issue_key().execute(session_principal(ada), "one", ["tasks:read"])
    identity.clock.advance(seconds=1)
    second = await identity.issue_key().execute(session_principal(ada), "two", ["tasks:read"])
    await identity.issue_key().execute(session_principal(bob), "bob's", ["tasks:read"])
    gone = await identity.issue_key().execute(session_principal(ada), "gone", ["tasks:read"])
    await RevokeApiKey(identity.uow(), identity.clock).execute(session_principal(ada), gone.key.id)

    page = await ListApiKeys(identity.uow()).execute(session_principal(ada))

    assert [k.id for k in page.items] == [second.key.id, first.key.id]
    assert page.next_position is None


async def test_list_needs_keys_manage(identity: Identity) -> None:
    user = await identity.new_user()
    with pytest.raises(Forbidden):
        await ListApiKeys(identity.uow()).execute(key_principal(user, READ))


async def test_revoke_stops_the_key_at_once(identity: Identity) -> None:
    user = await identity.new_user()
    issued = await identity.issue_key().execute(session_principal(user), "k", ["tasks:read"])
    await identity.authenticate().execute(issued.secret)

    await RevokeApiKey(identity.uow(), identity.clock).execute(
        session_principal(user), issued.key.id
    )

    with pytest.raises(Unauthenticated):
        await identity.authenticate().execute(issued.secret)
    assert identity.db.tables["api_keys"][issued.key.id].revoked_at == identity.clock.now()
    with pytest.raises(NotFound):  # a second revoke finds nothing to revoke
        await RevokeApiKey(identity.uow(), identity.clock).execute(
            session_principal(user), issued.key.id
        )


async def test_revoking_another_users_key_is_not_found(identity: Identity) -> None:
    ada = await identity.new_user()
    bob = await identity.new_user("bob@example.com")
    issued = await identity.issue_key().execute(session_principal(ada), "k", ["tasks:read"])

    with pytest.raises(NotFound):
        await RevokeApiKey(identity.uow(), identity.clock).execute(
            session_principal(bob), issued.key.id
        )
    await identity.authenticate().execute(issued.secret)  # still works


@pytest.mark.parametrize("key_id", ["not-a-uuid", "", "00000000-0000-7000-8000-000000000000"])
async def test_revoking_an_unknown_id_is_not_found(identity: Identity, key_id: str) -> None:
    user = await identity.new_user()
    with pytest.raises(NotFound):
        await RevokeApiKey(identity.uow(), identity.clock).execute(session_principal(user), key_id)


async def test_revoke_needs_keys_manage(identity: Identity) -> None:
    user = await identity.new_user()
    issued = await identity.issue_key().execute(session_principal(user), "k", ["tasks:read"])
    with pytest.raises(Forbidden):
        await RevokeApiKey(identity.uow(), identity.clock).execute(
            key_principal(user, READ, WRITE), issued.key.id
        )


async def test_a_key_that_no_longer_exists_cannot_issue(identity: Identity) -> None:
    # (A principal still cached for a key revoked a moment ago, say.)
    user = await identity.new_user()
    with pytest.raises(Unauthenticated):
        await identity.issue_key().execute(key_principal(user, READ, MANAGE), "x", ["tasks:read"])
    assert identity.db.tables["api_keys"] == {}
