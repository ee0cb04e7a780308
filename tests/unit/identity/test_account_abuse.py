"""Sign-up and log-in under abuse: the sign-up limit, the order of checks, the password rules
(common passwords, NFKC) and the log-in limits that must not lock an account's owner out."""

from __future__ import annotations

import pytest

from domain.errors import Conflict, Invalid, RateLimited, Unauthenticated
from domain.ports import RateLimitPolicy
from tests.unit.identity.support import PASSWORD, Identity
from tests.unit.identity.test_users_and_sessions import SpyHasher

# --- sign-up -------------------------------------------------------------------------------------


async def test_sign_up_is_limited_per_client_address_before_any_work(identity: Identity) -> None:
    policy = RateLimitPolicy("signup-address", limit=2, window_seconds=3600)
    for n in range(2):
        await identity.register(per_address=policy).execute(
            f"u{n}@example.com", PASSWORD, client_address="10.0.0.1"
        )
    spy = SpyHasher()
    identity.hasher = spy  # type: ignore[assignment]

    with pytest.raises(RateLimited) as caught:
        await identity.register(per_address=policy).execute(
            "u9@example.com", PASSWORD, client_address="10.0.0.1"
        )
    assert caught.value.retry_after >= 1
    assert spy.slow_calls == 0
    assert len(identity.db.tables["users"]) == 2
    # Another address, and the operator's CLI (no address), are not held back.
    await identity.register(per_address=policy).execute(
        "u10@example.com", PASSWORD, client_address="10.0.0.2"
    )
    await identity.register(per_address=policy).execute("u11@example.com", PASSWORD)


async def test_a_taken_email_is_refused_without_a_slow_hash(identity: Identity) -> None:
    await identity.new_user("ada@example.com")
    spy = SpyHasher()
    identity.hasher = spy  # type: ignore[assignment]

    with pytest.raises(Conflict):
        await identity.register().execute("ADA@example.com", "another good passphrase")
    assert spy.slow_calls == 0


@pytest.mark.parametrize("password", ["password123", "Password123", "QWERTYUIOP", "iloveyou2"])
async def test_a_common_password_is_refused_naming_password(
    identity: Identity, password: str
) -> None:
    with pytest.raises(Invalid) as caught:
        await identity.register().execute("ada@example.com", password)
    assert [e.field for e in caught.value.errors] == ["password"]
    assert "common" in caught.value.errors[0].message
    assert identity.db.tables["users"] == {}


async def test_the_length_rule_counts_the_normalised_password(identity: Identity) -> None:
    # U+FB03 (the "ffi" ligature) is one character that NFKC turns into three.
    with pytest.raises(Invalid):
        await identity.register().execute("ada@example.com", "\ufb03" * 43)  # 129 after NFKC
    await identity.register().execute("ada@example.com", "\ufb03" * 42)  # 126


# --- NFKC ----------------------------------------------------------------------------------------

COMPOSED = "caf\u00e9 au lait, s'il vous pla\u00eet"
DECOMPOSED = "cafe\u0301 au lait, s'il vous pla\u0131\u0302t".replace("\u0131", "i")
FULL_WIDTH = "\uff23orrect horse battery"  # a full-width C


async def test_a_password_logs_in_whichever_unicode_form_it_is_typed_in(
    identity: Identity,
) -> None:
    await identity.register().execute("ada@example.com", COMPOSED)
    await identity.login().execute("ada@example.com", DECOMPOSED, "10.0.0.1")
    await identity.register().execute("bob@example.com", FULL_WIDTH)
    await identity.login().execute("bob@example.com", "Correct horse battery", "10.0.0.1")


async def test_a_hash_of_the_password_as_typed_still_verifies_and_is_replaced(
    identity: Identity,
) -> None:
    user = await identity.new_user()
    legacy = await identity.hasher.hash(DECOMPOSED)  # stored before passwords were normalised
    identity.db.tables["users"][user.id] = type(user)(
        user.id, user.email, user.name, legacy, user.created_at
    )

    await identity.login().execute("ada@example.com", DECOMPOSED, "10.0.0.1")

    stored = identity.db.tables["users"][user.id].password_hash
    assert stored != legacy
    assert await identity.hasher.verify(stored, COMPOSED)


async def test_an_ascii_hash_made_before_normalisation_stays_valid(identity: Identity) -> None:
    user = await identity.new_user()
    before = identity.db.tables["users"][user.id].password_hash
    await identity.login().execute("ada@example.com", PASSWORD, "10.0.0.1")
    assert identity.db.tables["users"][user.id].password_hash == before


async def test_a_wrong_unnormalised_password_costs_the_same_for_a_stranger(
    identity: Identity,
) -> None:
    await identity.new_user()
    identity.hasher = spy = SpyHasher()  # type: ignore[assignment]
    for email in ("ada@example.com", "nobody@example.com"):
        spy.slow_calls = 0
        with pytest.raises(Unauthenticated):
            await identity.login().execute(email, DECOMPOSED, "10.0.0.1")
        assert spy.slow_calls == 2, email


# --- log-in lock-out -----------------------------------------------------------------------------

TIGHT = {
    "per_address": RateLimitPolicy("login-address", limit=3, window_seconds=60),
    "per_email_address": RateLimitPolicy("login-email-address", limit=3, window_seconds=60),
    "per_email": RateLimitPolicy("login-email", limit=6, window_seconds=60),
}


async def test_guessing_from_one_address_does_not_lock_the_owner_out(identity: Identity) -> None:
    await identity.new_user()
    outcomes = []
    for _ in range(20):
        try:
            await identity.login(**TIGHT).execute("ada@example.com", "guess guess", "10.6.6.6")
        except (Unauthenticated, RateLimited) as exc:
            outcomes.append(type(exc).__name__)
    assert outcomes == ["Unauthenticated"] * 3 + ["RateLimited"] * 17

    await identity.login(**TIGHT).execute("ada@example.com", PASSWORD, "10.1.1.1")


async def test_one_account_is_limited_per_address_even_when_the_address_may_do_more(
    identity: Identity,
) -> None:
    await identity.new_user()
    loose = {**TIGHT, "per_address": RateLimitPolicy("login-address", 100, 60)}
    for _ in range(3):
        with pytest.raises(Unauthenticated):
            await identity.login(**loose).execute("ada@example.com", "guess guess", "10.6.6.6")
    with pytest.raises(RateLimited):
        await identity.login(**loose).execute("ada@example.com", PASSWORD, "10.6.6.6")
    # The same address may still try other accounts (a shared office address, say).
    await identity.new_user("bob@example.com")
    await identity.login(**loose).execute("bob@example.com", PASSWORD, "10.6.6.6")


async def test_many_addresses_hit_the_accounts_ceiling(identity: Identity) -> None:
    await identity.new_user()
    for n in range(6):
        with pytest.raises(Unauthenticated):
            await identity.login(**TIGHT).execute("ada@example.com", "guess guess", f"10.0.0.{n}")
    with pytest.raises(RateLimited):
        await identity.login(**TIGHT).execute("ada@example.com", PASSWORD, "10.9.9.9")
