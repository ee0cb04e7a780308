"""The security adapters: Argon2id, HMAC token hashing, secret generation, ids, clock, Fernet."""

import asyncio
import base64
import re
import uuid

import pytest

from adapters.security.crypto import FernetCipher
from adapters.security.ids import SystemClock, UuidV7Generator
from adapters.security.tokens import HmacTokenHasher, RandomSecretGenerator
from tests.unit.identity.support import cheap_hasher


async def test_argon2id_hashes_salted_and_verifies() -> None:
    hasher = cheap_hasher()
    first, second = await hasher.hash("pässword1"), await hasher.hash("pässword1")

    assert first.startswith("$argon2id$v=19$m=8192,t=1,p=1$")
    assert first != second  # a fresh salt each time
    assert await hasher.verify(first, "pässword1")
    assert not await hasher.verify(first, "password1")
    assert not await hasher.verify("not a hash", "pässword1")


async def test_argon2id_needs_rehash_when_parameters_change() -> None:
    old = await cheap_hasher(time_cost=1).hash("password1")

    assert not cheap_hasher(time_cost=1).needs_rehash(old)
    assert cheap_hasher(time_cost=2).needs_rehash(old)
    assert cheap_hasher().needs_rehash("not a hash")
    assert await cheap_hasher(time_cost=2).verify(old, "password1")


async def test_argon2id_runs_hashes_concurrently_off_the_loop() -> None:
    hasher = cheap_hasher()
    hashes = await asyncio.gather(*(hasher.hash(f"password{n}") for n in range(6)))
    assert len(set(hashes)) == 6


def test_argon2id_refuses_zero_concurrency() -> None:
    with pytest.raises(ValueError, match="max_concurrency"):
        type(cheap_hasher())(max_concurrency=0)


def test_hmac_token_hasher_is_deterministic_and_keyed() -> None:
    hasher = HmacTokenHasher("a" * 32)

    digest = hasher.hash("thk_secret")

    assert re.fullmatch(r"[0-9a-f]{64}", digest)
    assert hasher.hash("thk_secret") == digest
    assert HmacTokenHasher(b"a" * 32).hash("thk_secret") == digest
    assert HmacTokenHasher("b" * 32).hash("thk_secret") != digest
    assert hasher.hash("thk_secreT") != digest


def test_hmac_token_hasher_refuses_a_short_secret() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        HmacTokenHasher("short")


def test_secrets_have_their_prefix_and_full_entropy() -> None:
    generator = RandomSecretGenerator()
    keys = {generator.api_key() for _ in range(200)}
    tokens = {generator.session_token() for _ in range(200)}

    assert len(keys) == len(tokens) == 200
    assert all(re.fullmatch(r"thk_[0-9A-Za-z]{43}", k) for k in keys)
    assert all(re.fullmatch(r"ths_[0-9A-Za-z]{43}", t) for t in tokens)
    # Every base62 digit shows up somewhere, including the top position: nothing is stuck.
    assert {k[-1] for k in keys} != {"0"}
    assert len({ch for k in keys for ch in k[4:]}) == 62


def test_ids_are_time_ordered_uuid7() -> None:
    generator = UuidV7Generator()
    ids = [generator.new_id() for _ in range(50)]

    assert all(uuid.UUID(i).version == 7 and str(uuid.UUID(i)) == i for i in ids)
    assert ids == sorted(ids)
    assert len(set(ids)) == 50


def test_system_clock_is_utc_aware() -> None:
    now = SystemClock().now()
    assert now.utcoffset() is not None
    assert now.utcoffset().total_seconds() == 0  # type: ignore[union-attr]


def test_fernet_round_trips_and_detects_tampering() -> None:
    cipher = FernetCipher(FernetCipher.generate_key())

    sealed = cipher.encrypt("s3cret ✓")

    assert "s3cret" not in sealed
    assert cipher.decrypt(sealed) == "s3cret ✓"
    with pytest.raises(ValueError, match="altered"):
        cipher.decrypt(_flip_a_byte(sealed))
    with pytest.raises(ValueError, match="another key"):
        FernetCipher(FernetCipher.generate_key()).decrypt(sealed)


def _flip_a_byte(token: str) -> str:
    raw = bytearray(base64.urlsafe_b64decode(token))
    raw[len(raw) // 2] ^= 0x01
    return base64.urlsafe_b64encode(bytes(raw)).decode()
