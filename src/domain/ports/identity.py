"""Ports of the identity part: repositories for users, sessions and API keys, and the
security primitives (password hashing, token hashing, secret generation, encryption)."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from domain.api_keys import ApiKey, KeyListPosition
from domain.auth import Principal, Session
from domain.ports import UnitOfWorkBase
from domain.ports.projects import MembershipRepository, ProjectRepository
from domain.users import User


class UserRepository(Protocol):
    async def add(self, user: User) -> None:
        """Store a new user; raise `Conflict` when its `email_key` (or id) is taken."""
        ...

    async def get(self, user_id: str) -> User | None: ...

    async def get_by_email(self, email: str) -> User | None:
        """The user whose e-mail equals `email` case-insensitively (compared by `email_key`)."""
        ...

    async def set_password_hash(self, user_id: str, password_hash: str) -> None:
        """Replace a user's password hash (rehash on login, password change)."""
        ...


class SessionRepository(Protocol):
    async def add(self, session: Session) -> None: ...

    async def get_by_token_hash(self, token_hash: str) -> Session | None:
        """The session with this token hash, revoked or expired ones included."""
        ...

    async def revoke(self, session_id: str, at: datetime) -> None:
        """Set `revoked_at` unless it is already set; no error for an unknown id."""
        ...


class ApiKeyRepository(Protocol):
    async def add(self, key: ApiKey) -> None: ...

    async def get_by_hash(self, key_hash: str) -> ApiKey | None:
        """The key with this hash, revoked or expired ones included."""
        ...

    async def list_page(
        self, user_id: str, after: KeyListPosition | None, limit: int
    ) -> list[ApiKey]:
        """Up to `limit` of the user's keys that are not revoked (expired ones included), newest
        first (created_at, then id, descending), strictly after `after` in that order."""
        ...

    async def get_for_user(self, user_id: str, key_id: str) -> ApiKey | None:
        """The key `key_id` only when `user_id` owns it (revoked ones included)."""
        ...

    async def count_active(self, user_id: str, now: datetime) -> int:
        """How many of the user's keys are neither revoked nor expired at `now`."""
        ...

    async def get_issuer(self, user_id: str, key_id: str) -> ApiKey | None:
        """As `get_for_user`, and held against a concurrent revocation until the transaction
        ends, so a key issued by it cannot escape that revocation (PostgreSQL: FOR SHARE)."""
        ...

    async def revoke(self, key_id: str, at: datetime) -> None:
        """Set `revoked_at` unless it is already set; no error for an unknown id."""
        ...

    async def revoke_tree(self, key_id: str, at: datetime) -> list[str]:
        """Revoke `key_id` and every key it issued, transitively, that is not revoked yet; the
        ids revoked now (the root first, when it was not revoked already)."""
        ...

    async def touch_last_used(self, key_id: str, at: datetime) -> None:
        """Set `last_used_at`; the caller decides when that is worth a write."""
        ...


class IdentityUnitOfWork(UnitOfWorkBase, Protocol):
    """A transaction that reaches users, sessions and API keys."""

    @property
    def users(self) -> UserRepository: ...

    @property
    def sessions(self) -> SessionRepository: ...

    @property
    def api_keys(self) -> ApiKeyRepository: ...


class RegistrationUnitOfWork(IdentityUnitOfWork, Protocol):
    """Sign-up's transaction: the new user and their inbox commit together."""

    @property
    def projects(self) -> ProjectRepository: ...

    @property
    def memberships(self) -> MembershipRepository: ...


class PasswordHasher(Protocol):
    """Slow, salted password hashing (argon2id). `hash` and `verify` are async so an adapter can
    run them off the event loop."""

    async def hash(self, password: str) -> str: ...

    async def verify(self, password_hash: str, password: str) -> bool:
        """True when `password` matches; False for a mismatch or an unreadable hash."""
        ...

    def needs_rehash(self, password_hash: str) -> bool:
        """True when the hash was made with other parameters than the current ones."""
        ...


class TokenHasher(Protocol):
    """A fast keyed hash (HMAC) of a high-entropy token or key: what is stored and looked up."""

    def hash(self, token: str) -> str: ...


class SecretGenerator(Protocol):
    def session_token(self) -> str:
        """A new session bearer token (never starts with the API key prefix `thk_`)."""
        ...

    def api_key(self) -> str:
        """A new API key secret: `thk_` followed by at least 32 random bytes' worth of text."""
        ...


class Cipher(Protocol):
    """Symmetric authenticated encryption of short strings (e.g. secrets kept at rest)."""

    def encrypt(self, plaintext: str) -> str: ...

    def decrypt(self, ciphertext: str) -> str:
        """The plaintext; raises `ValueError` when the text was altered or made with another key."""
        ...


class PrincipalCache(Protocol):
    """Resolved principals by token hash, so authentication costs no database round trip.

    Entries expire on their own (never later than the credential itself); revoking a credential
    evicts every entry made from it, at once, for every process sharing the cache, and `put`
    refuses that credential from then on, so a request that read it just before the revocation
    cannot cache it just after.
    """

    async def get(self, key: str) -> Principal | None: ...

    async def put(self, key: str, principal: Principal, ttl_seconds: int) -> None: ...

    async def evict(self, credential_id: str) -> None:
        """Forget every cached principal resolved from this session id or key id, and refuse to
        cache it again."""
        ...
