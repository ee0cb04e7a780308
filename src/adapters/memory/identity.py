"""In-memory repositories for users, sessions and API keys.

Each works on one table of a `MemoryUnitOfWork`: a dict of immutable entities keyed by id.
Lookups by e-mail or hash scan the table, which is fine for the embedded default and tests.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from domain.api_keys import ApiKey, KeyListPosition
from domain.auth import Session
from domain.errors import Conflict
from domain.users import User, email_key


class MemoryUserRepository:
    def __init__(self, table: dict[str, Any]) -> None:
        self._rows: dict[str, User] = table

    async def add(self, user: User) -> None:
        key = user.email_key
        if user.id in self._rows or any(row.email_key == key for row in self._rows.values()):
            raise Conflict("a user with this e-mail address already exists")
        self._rows[user.id] = user

    async def get(self, user_id: str) -> User | None:
        return self._rows.get(user_id)

    async def get_by_email(self, email: str) -> User | None:
        key = email_key(email)
        return next((row for row in self._rows.values() if row.email_key == key), None)

    async def set_password_hash(self, user_id: str, password_hash: str) -> None:
        row = self._rows.get(user_id)
        if row is not None:
            self._rows[user_id] = replace(row, password_hash=password_hash)


class MemorySessionRepository:
    def __init__(self, table: dict[str, Any]) -> None:
        self._rows: dict[str, Session] = table

    async def add(self, session: Session) -> None:
        if session.id in self._rows:
            raise Conflict("a session with this id already exists")
        self._rows[session.id] = session

    async def get_by_token_hash(self, token_hash: str) -> Session | None:
        return next((row for row in self._rows.values() if row.token_hash == token_hash), None)

    async def revoke(self, session_id: str, at: datetime) -> None:
        row = self._rows.get(session_id)
        if row is not None and row.revoked_at is None:
            self._rows[session_id] = replace(row, revoked_at=at)

    async def purge_expired(self, before: datetime, limit: int) -> int:
        victims = [
            row.id
            for row in self._rows.values()
            if row.expires_at < before or (row.revoked_at is not None and row.revoked_at < before)
        ][:limit]
        for session_id in victims:
            del self._rows[session_id]
        return len(victims)


class MemoryApiKeyRepository:
    def __init__(self, table: dict[str, Any]) -> None:
        self._rows: dict[str, ApiKey] = table

    async def add(self, key: ApiKey) -> None:
        if key.id in self._rows or any(r.key_hash == key.key_hash for r in self._rows.values()):
            raise Conflict("an API key with this id or hash already exists")
        self._rows[key.id] = key

    async def get_by_hash(self, key_hash: str) -> ApiKey | None:
        return next((row for row in self._rows.values() if row.key_hash == key_hash), None)

    async def list_page(
        self, user_id: str, after: KeyListPosition | None, limit: int
    ) -> list[ApiKey]:
        rows = [r for r in self._rows.values() if r.user_id == user_id and r.revoked_at is None]
        if after is not None:
            rows = [r for r in rows if (r.created_at, r.id) < (after.created_at, after.id)]
        return sorted(rows, key=lambda r: (r.created_at, r.id), reverse=True)[:limit]

    async def get_for_user(self, user_id: str, key_id: str) -> ApiKey | None:
        row = self._rows.get(key_id)
        return row if row is not None and row.user_id == user_id else None

    async def count_active(self, user_id: str, now: datetime) -> int:
        return sum(1 for r in self._rows.values() if r.user_id == user_id and r.is_active(now))

    async def get_issuer(self, user_id: str, key_id: str) -> ApiKey | None:
        # One event loop and a snapshot per unit of work: nothing can revoke it meanwhile.
        return await self.get_for_user(user_id, key_id)

    async def revoke(self, key_id: str, at: datetime) -> None:
        row = self._rows.get(key_id)
        if row is not None and row.revoked_at is None:
            self._rows[key_id] = replace(row, revoked_at=at)

    async def revoke_tree(self, key_id: str, at: datetime) -> list[str]:
        revoked: list[str] = []
        level = [key_id]
        while level:
            for row_id in level:
                row = self._rows.get(row_id)
                if row is not None and row.revoked_at is None:
                    self._rows[row_id] = replace(row, revoked_at=at)
                    revoked.append(row_id)
            parents = set(level)
            level = [
                r.id
                for r in self._rows.values()
                if r.created_by_key_id in parents and r.revoked_at is None
            ]
        return revoked

    async def touch_last_used(self, key_id: str, at: datetime) -> None:
        row = self._rows.get(key_id)
        if row is not None:
            self._rows[key_id] = replace(row, last_used_at=at)
