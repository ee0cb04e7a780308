"""The API key aggregate: a long-lived bearer credential limited to a set of scopes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from domain.auth import Scope
from domain.errors import Invalid
from domain.names import display_name

API_KEY_PREFIX = "thk_"
# How many leading characters of a key are kept in clear to tell keys apart in lists:
# "thk_" plus 8 random characters (about 47 bits; far from enough to guess the rest).
DISPLAY_PREFIX_LENGTH = 12
NAME_MAX_LENGTH = 100
LAST_USED_RESOLUTION = timedelta(seconds=60)
KEY_LIST_DEFAULT_LIMIT = 50
KEY_LIST_MAX_LIMIT = 200


@dataclass(frozen=True, slots=True)
class ApiKey:
    """An issued key. Only `key_hash` (a keyed hash of the secret) and `prefix` are stored."""

    id: str
    user_id: str
    name: str
    prefix: str
    key_hash: str
    scopes: frozenset[Scope]
    created_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None
    # The key that issued this one (None: issued with a session, the service token or the CLI).
    created_by_key_id: str | None = None
    # The projects the key may reach (None: every project of its user).
    project_ids: frozenset[str] | None = None

    def is_active(self, now: datetime) -> bool:
        """Not revoked and not past its expiry."""
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)

    def last_use_is_stale(self, now: datetime) -> bool:
        """Whether `last_used_at` is old enough to be worth a write (at most once a minute)."""
        return self.last_used_at is None or now - self.last_used_at >= LAST_USED_RESOLUTION


def display_prefix(secret: str) -> str:
    """The part of a key kept in clear and shown in lists."""
    return secret[:DISPLAY_PREFIX_LENGTH]


def normalize_key_name(raw: str) -> str:
    """A key name of 1-100 characters (`display_name`); else `Invalid`."""
    return display_name(raw, NAME_MAX_LENGTH)


def validate_key_expiry(expires_at: datetime | None, now: datetime) -> datetime | None:
    """An expiry must carry a time zone and lie in the future; else `Invalid` on `expires_at`."""
    if expires_at is None:
        return None
    if expires_at.tzinfo is None or expires_at.utcoffset() is None:
        raise Invalid.of("expires_at", "must carry a time zone (e.g. end in Z)")
    try:
        in_utc = expires_at.astimezone(UTC)
    except OverflowError:
        raise Invalid.of("expires_at", "is out of the representable range") from None
    if in_utc <= now:
        raise Invalid.of("expires_at", "must be in the future")
    return in_utc


def bound_expiry_by_issuer(expires_at: datetime | None, issuer: ApiKey | None) -> datetime | None:
    """A key cannot outlive the key that issues it: with an issuer that expires, `expires_at`
    must be given and no later than the issuer's; else `Invalid` on `expires_at`."""
    if issuer is None or issuer.expires_at is None:
        return expires_at
    limit = issuer.expires_at.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if expires_at is None:
        raise Invalid.of(
            "expires_at",
            f"is required: the issuing key expires at {limit} and a key cannot outlive its issuer",
        )
    if expires_at > issuer.expires_at:
        raise Invalid.of("expires_at", f"must be no later than the issuing key's expiry ({limit})")
    return expires_at


@dataclass(frozen=True, slots=True)
class KeyListPosition:
    """Where a page of the key list (newest first) ends: the last key's creation time and id."""

    created_at: datetime
    id: str


def validate_list_limit(limit: int) -> int:
    """A page size of 1-200; else `Invalid` on `limit`."""
    if not 1 <= limit <= KEY_LIST_MAX_LIMIT:
        raise Invalid.of("limit", f"must be between 1 and {KEY_LIST_MAX_LIMIT}")
    return limit
