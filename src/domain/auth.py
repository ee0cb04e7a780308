"""Who is calling and what they may do: scopes, sessions and the resolved `Principal`."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from domain.errors import Forbidden, Invalid


class Scope(StrEnum):
    """Every scope a credential may hold: the one list API keys are checked against."""

    TASKS_READ = "tasks:read"
    TASKS_WRITE = "tasks:write"
    KEYS_MANAGE = "keys:manage"
    PROJECTS_READ = "projects:read"
    PROJECTS_WRITE = "projects:write"  # create, rename, delete projects; manage members
    WEBHOOKS_MANAGE = "webhooks:manage"


ALL_SCOPES: frozenset[Scope] = frozenset(Scope)


def parse_scopes(values: Iterable[str], field: str = "scopes") -> frozenset[Scope]:
    """Known scope names as a non-empty set; raises `Invalid` on `field` otherwise."""
    scopes: set[Scope] = set()
    for value in values:
        try:
            scopes.add(Scope(value))
        except ValueError:
            known = ", ".join(sorted(ALL_SCOPES))
            raise Invalid.of(field, f"unknown scope {value!r} (known: {known})") from None
    if not scopes:
        raise Invalid.of(field, "must name at least one scope")
    return frozenset(scopes)


class PrincipalKind(StrEnum):
    SESSION = "session"
    API_KEY = "api_key"
    SERVICE = "service"


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller.

    `user_id` is whose data the call touches; `credential_id` is the session id, the key id or
    "service"; `actor` is who acted, for audit lines: "user:<id>", "api_key:<id>" or "service".
    `project_ids` is the set of projects a restricted API key may reach (None: unrestricted).
    """

    user_id: str
    kind: PrincipalKind
    scopes: frozenset[Scope]
    credential_id: str
    actor: str
    project_ids: frozenset[str] | None = None

    @property
    def rate_limit_subject(self) -> str:
        """Whose budget a request spends: the user's, whatever the credential (every session,
        every API key and service calls acting for them share it, so extra keys add none)."""
        return f"user:{self.user_id}"

    def has(self, scope: Scope) -> bool:
        return scope in self.scopes

    def require(self, scope: Scope) -> None:
        """Raise `Forbidden` unless this caller holds `scope`."""
        if scope not in self.scopes:
            raise Forbidden(f"this credential lacks the {scope} scope")


def address_subject(address: str) -> str:
    """Whose budget a request without a valid credential spends: its client address."""
    return f"addr:{address}"


@dataclass(frozen=True, slots=True)
class Session:
    """A login. Only the keyed hash of its bearer token is kept."""

    id: str
    user_id: str
    token_hash: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None = None

    def is_active(self, now: datetime) -> bool:
        return self.revoked_at is None and now < self.expires_at
