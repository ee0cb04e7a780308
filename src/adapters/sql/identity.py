"""SQL repositories for users, sessions and API keys, with their row <-> entity mappers.

Each repository runs on the connection (and transaction) of one `SqlUnitOfWork`. Statements are
built once at import; values travel as bound parameters.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, or_, select, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from adapters.sql.tables import api_keys, sessions, users
from adapters.sql.types import UTC_DATETIME, UUID_TEXT, is_canonical_uuid
from domain.api_keys import ApiKey, KeyListPosition
from domain.auth import Scope, Session
from domain.errors import Conflict
from domain.users import User, email_key

# --- users ---------------------------------------------------------------------------------------

_USER_COLUMNS = (
    users.c.id,
    users.c.email,
    users.c.name,
    users.c.password_hash,
    users.c.created_at,
)
_INSERT_USER = insert(users)
_SELECT_USER = select(*_USER_COLUMNS).where(users.c.id == bindparam("user_id"))
_SELECT_USER_BY_EMAIL_KEY = select(*_USER_COLUMNS).where(users.c.email_key == bindparam("key"))
_SET_PASSWORD_HASH = (
    update(users)
    .where(users.c.id == bindparam("user_id"))
    .values(password_hash=bindparam("new_hash"))
)


def user_to_row(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "email": user.email,
        "email_key": user.email_key,
        "name": user.name,
        "password_hash": user.password_hash,
        "created_at": user.created_at,
    }


def user_from_row(row: Sequence[Any]) -> User:
    user_id, email, name, password_hash, created_at = row
    return User(
        id=user_id, email=email, name=name, password_hash=password_hash, created_at=created_at
    )


class SqlUserRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self._conn = connection
        self._savepoints = connection.dialect.name == "postgresql"

    async def add(self, user: User) -> None:
        """Insert `user`; `Conflict` when its id or e-mail key is taken. The transaction stays
        usable after the conflict: a savepoint on PostgreSQL (where an error aborts the
        transaction); SQLite only undoes the failed statement anyway (and the sqlite3 driver's
        deferred BEGIN would turn a savepoint into a commit of its own)."""
        try:
            if self._savepoints:
                async with self._conn.begin_nested():
                    await self._conn.execute(_INSERT_USER, user_to_row(user))
            else:
                await self._conn.execute(_INSERT_USER, user_to_row(user))
        except IntegrityError:
            raise Conflict("a user with this e-mail address already exists") from None

    async def get(self, user_id: str) -> User | None:
        if not is_canonical_uuid(user_id):
            return None
        row = (await self._conn.execute(_SELECT_USER, {"user_id": user_id})).first()
        return None if row is None else user_from_row(row)

    async def get_by_email(self, email: str) -> User | None:
        result = await self._conn.execute(_SELECT_USER_BY_EMAIL_KEY, {"key": email_key(email)})
        row = result.first()
        return None if row is None else user_from_row(row)

    async def set_password_hash(self, user_id: str, password_hash: str) -> None:
        if is_canonical_uuid(user_id):
            await self._conn.execute(
                _SET_PASSWORD_HASH, {"user_id": user_id, "new_hash": password_hash}
            )


# --- sessions ------------------------------------------------------------------------------------

_SESSION_COLUMNS = (
    sessions.c.id,
    sessions.c.user_id,
    sessions.c.token_hash,
    sessions.c.created_at,
    sessions.c.expires_at,
    sessions.c.revoked_at,
)
_INSERT_SESSION = insert(sessions)
_SELECT_SESSION_BY_TOKEN_HASH = select(*_SESSION_COLUMNS).where(
    sessions.c.token_hash == bindparam("token_hash")
)
_REVOKE_SESSION = (
    update(sessions)
    .where(sessions.c.id == bindparam("session_id"), sessions.c.revoked_at.is_(None))
    .values(revoked_at=bindparam("at"))
)


def _purge_sessions(*, skip_locked: bool) -> Any:
    """DELETE of up to `limit` sessions past use before `before`, chosen in a subquery (PostgreSQL
    locks them there, skipping rows another transaction holds, so concurrent purges never wait on
    each other nor delete a row twice)."""
    before = bindparam("before", type_=UTC_DATETIME)
    victims = (
        select(sessions.c.id)
        .where(or_(sessions.c.expires_at < before, sessions.c.revoked_at < before))
        .limit(bindparam("limit"))
    )
    if skip_locked:
        victims = victims.with_for_update(skip_locked=True)
    return delete(sessions).where(sessions.c.id.in_(victims.scalar_subquery()))


_PURGE_SESSIONS_POSTGRESQL = _purge_sessions(skip_locked=True)
_PURGE_SESSIONS_SQLITE = _purge_sessions(skip_locked=False)


def session_to_row(session: Session) -> dict[str, Any]:
    return {
        "id": session.id,
        "user_id": session.user_id,
        "token_hash": session.token_hash,
        "created_at": session.created_at,
        "expires_at": session.expires_at,
        "revoked_at": session.revoked_at,
    }


def session_from_row(row: Sequence[Any]) -> Session:
    session_id, user_id, token_hash, created_at, expires_at, revoked_at = row
    return Session(
        id=session_id,
        user_id=user_id,
        token_hash=token_hash,
        created_at=created_at,
        expires_at=expires_at,
        revoked_at=revoked_at,
    )


class SqlSessionRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self._conn = connection

    async def add(self, session: Session) -> None:
        """Insert `session`; `Conflict` when its id or token hash is taken (random values: a
        clash is a bug, so no savepoint is spent on it and the transaction must roll back)."""
        try:
            await self._conn.execute(_INSERT_SESSION, session_to_row(session))
        except IntegrityError:
            raise Conflict("a session with this id or token already exists") from None

    async def get_by_token_hash(self, token_hash: str) -> Session | None:
        result = await self._conn.execute(_SELECT_SESSION_BY_TOKEN_HASH, {"token_hash": token_hash})
        row = result.first()
        return None if row is None else session_from_row(row)

    async def revoke(self, session_id: str, at: datetime) -> None:
        if is_canonical_uuid(session_id):
            await self._conn.execute(_REVOKE_SESSION, {"session_id": session_id, "at": at})

    async def purge_expired(self, before: datetime, limit: int) -> int:
        postgresql = self._conn.dialect.name == "postgresql"
        statement = _PURGE_SESSIONS_POSTGRESQL if postgresql else _PURGE_SESSIONS_SQLITE
        result: Any = await self._conn.execute(statement, {"before": before, "limit": limit})
        return int(result.rowcount)


# --- API keys ------------------------------------------------------------------------------------

_KEY_COLUMNS = (
    api_keys.c.id,
    api_keys.c.user_id,
    api_keys.c.name,
    api_keys.c.prefix,
    api_keys.c.key_hash,
    api_keys.c.scopes,
    api_keys.c.created_at,
    api_keys.c.expires_at,
    api_keys.c.revoked_at,
    api_keys.c.last_used_at,
    api_keys.c.created_by_key_id,
    api_keys.c.project_ids,
)
_INSERT_KEY = insert(api_keys)
_SELECT_KEY_BY_HASH = select(*_KEY_COLUMNS).where(api_keys.c.key_hash == bindparam("key_hash"))
_SELECT_KEY_PAGE = (
    select(*_KEY_COLUMNS)
    .where(api_keys.c.user_id == bindparam("user_id"), api_keys.c.revoked_at.is_(None))
    .order_by(api_keys.c.created_at.desc(), api_keys.c.id.desc())
    .limit(bindparam("limit"))
)
_SELECT_KEY_PAGE_AFTER = _SELECT_KEY_PAGE.where(
    tuple_(api_keys.c.created_at, api_keys.c.id)
    < tuple_(bindparam("created_at", type_=UTC_DATETIME), bindparam("key_id", type_=UUID_TEXT))
)
_SELECT_KEY_OF_USER = select(*_KEY_COLUMNS).where(
    api_keys.c.id == bindparam("key_id"), api_keys.c.user_id == bindparam("user_id")
)
_COUNT_ACTIVE_KEYS = select(func.count()).where(
    api_keys.c.user_id == bindparam("user_id"),
    api_keys.c.revoked_at.is_(None),
    or_(api_keys.c.expires_at.is_(None), api_keys.c.expires_at > bindparam("now")),
)
# Holds the issuing key's row until the issue commits: a revocation of it waits, and then sees
# the new key (SQLite, which has one writer at a time, renders no FOR SHARE).
_SELECT_ISSUER = _SELECT_KEY_OF_USER.with_for_update(read=True)
_REVOKE_ROOT = (
    update(api_keys)
    .where(api_keys.c.id == bindparam("key_id"), api_keys.c.revoked_at.is_(None))
    .values(revoked_at=bindparam("at"))
    .returning(api_keys.c.id)
)
# One generation at a time, each statement seeing what the previous ones (and any issue that
# committed meanwhile) left.
_REVOKE_CHILDREN = (
    update(api_keys)
    .where(
        api_keys.c.created_by_key_id.in_(bindparam("parents", expanding=True)),
        api_keys.c.revoked_at.is_(None),
    )
    .values(revoked_at=bindparam("at"))
    .returning(api_keys.c.id)
)
_REVOKE_KEY = (
    update(api_keys)
    .where(api_keys.c.id == bindparam("key_id"), api_keys.c.revoked_at.is_(None))
    .values(revoked_at=bindparam("at"))
)
_TOUCH_KEY = (
    update(api_keys)
    .where(api_keys.c.id == bindparam("key_id"))
    .values(last_used_at=bindparam("at"))
)


def scopes_to_text(scopes: frozenset[Scope]) -> str:
    return " ".join(sorted(scope.value for scope in scopes))


def scopes_from_text(text: str) -> frozenset[Scope]:
    return frozenset(Scope(name) for name in text.split())


def api_key_to_row(key: ApiKey) -> dict[str, Any]:
    return {
        "id": key.id,
        "user_id": key.user_id,
        "name": key.name,
        "prefix": key.prefix,
        "key_hash": key.key_hash,
        "scopes": scopes_to_text(key.scopes),
        "created_at": key.created_at,
        "expires_at": key.expires_at,
        "revoked_at": key.revoked_at,
        "last_used_at": key.last_used_at,
        "created_by_key_id": key.created_by_key_id,
        # Sorted, so a key's row reads the same whatever order the ids were given in.
        "project_ids": sorted(key.project_ids) if key.project_ids is not None else None,
    }


def api_key_from_row(row: Sequence[Any]) -> ApiKey:
    (
        key_id,
        user_id,
        name,
        prefix,
        key_hash,
        scopes,
        created_at,
        expires_at,
        revoked_at,
        last_used_at,
        created_by_key_id,
        project_ids,
    ) = row
    return ApiKey(
        id=key_id,
        user_id=user_id,
        name=name,
        prefix=prefix,
        key_hash=key_hash,
        scopes=scopes_from_text(scopes),
        created_at=created_at,
        expires_at=expires_at,
        revoked_at=revoked_at,
        last_used_at=last_used_at,
        created_by_key_id=created_by_key_id,
        project_ids=frozenset(project_ids) if project_ids is not None else None,
    )


class SqlApiKeyRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self._conn = connection

    async def add(self, key: ApiKey) -> None:
        """Insert `key`; `Conflict` when its id or hash is taken (random values: as for
        sessions, the transaction must roll back after it)."""
        try:
            await self._conn.execute(_INSERT_KEY, api_key_to_row(key))
        except IntegrityError:
            raise Conflict("an API key with this id or hash already exists") from None

    async def get_by_hash(self, key_hash: str) -> ApiKey | None:
        row = (await self._conn.execute(_SELECT_KEY_BY_HASH, {"key_hash": key_hash})).first()
        return None if row is None else api_key_from_row(row)

    async def get_for_user(self, user_id: str, key_id: str) -> ApiKey | None:
        if not (is_canonical_uuid(user_id) and is_canonical_uuid(key_id)):
            return None
        params = {"key_id": key_id, "user_id": user_id}
        row = (await self._conn.execute(_SELECT_KEY_OF_USER, params)).first()
        return None if row is None else api_key_from_row(row)

    async def list_page(
        self, user_id: str, after: KeyListPosition | None, limit: int
    ) -> list[ApiKey]:
        if not is_canonical_uuid(user_id):
            return []
        params: dict[str, Any] = {"user_id": user_id, "limit": limit}
        statement = _SELECT_KEY_PAGE
        if after is not None:
            if not is_canonical_uuid(after.id):
                return []
            statement = _SELECT_KEY_PAGE_AFTER
            params |= {"created_at": after.created_at, "key_id": after.id}
        result = await self._conn.execute(statement, params)
        return [api_key_from_row(row) for row in result]

    async def count_active(self, user_id: str, now: datetime) -> int:
        if not is_canonical_uuid(user_id):
            return 0
        params = {"user_id": user_id, "now": now}
        return int((await self._conn.execute(_COUNT_ACTIVE_KEYS, params)).scalar_one())

    async def get_issuer(self, user_id: str, key_id: str) -> ApiKey | None:
        if not (is_canonical_uuid(user_id) and is_canonical_uuid(key_id)):
            return None
        params = {"key_id": key_id, "user_id": user_id}
        row = (await self._conn.execute(_SELECT_ISSUER, params)).first()
        return None if row is None else api_key_from_row(row)

    async def revoke(self, key_id: str, at: datetime) -> None:
        if is_canonical_uuid(key_id):
            await self._conn.execute(_REVOKE_KEY, {"key_id": key_id, "at": at})

    async def revoke_tree(self, key_id: str, at: datetime) -> list[str]:
        if not is_canonical_uuid(key_id):
            return []
        result = await self._conn.execute(_REVOKE_ROOT, {"key_id": key_id, "at": at})
        revoked = [str(row[0]) for row in result]
        parents = [key_id]
        while parents:
            result = await self._conn.execute(_REVOKE_CHILDREN, {"parents": parents, "at": at})
            parents = [str(row[0]) for row in result]
            revoked += parents
        return revoked

    async def touch_last_used(self, key_id: str, at: datetime) -> None:
        if is_canonical_uuid(key_id):
            await self._conn.execute(_TOUCH_KEY, {"key_id": key_id, "at": at})
