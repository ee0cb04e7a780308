"""Identity use cases: sign-up, log-in/out, the current user, API keys, bearer authentication.

Each use case is a small class that receives its ports through the constructor and runs one
transaction per `execute` call. Build one per request (the unit of work is per request).
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Awaitable, Callable, Container, Iterable, Set
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from domain.access import POLICY
from domain.api_keys import (
    API_KEY_PREFIX,
    KEY_LIST_DEFAULT_LIMIT,
    ApiKey,
    KeyListPosition,
    bound_expiry_by_issuer,
    display_prefix,
    normalize_key_name,
    validate_key_expiry,
    validate_list_limit,
)
from domain.auth import ALL_SCOPES, Principal, PrincipalKind, Scope, Session, parse_scopes
from domain.errors import (
    Conflict,
    FieldErrors,
    Forbidden,
    Invalid,
    LimitReached,
    NotFound,
    RateLimited,
    Unauthenticated,
)
from domain.ports import Clock, IdGenerator, RateLimiter, RateLimitPolicy
from domain.ports.identity import (
    IdentityUnitOfWork,
    PasswordHasher,
    PrincipalCache,
    RegistrationUnitOfWork,
    SecretGenerator,
    TokenHasher,
)
from domain.use_cases.projects import open_inbox
from domain.users import (
    PASSWORD_MAX_LENGTH,
    User,
    email_key,
    normalize_email,
    normalize_name,
    normalize_password,
    validate_password,
)

DEFAULT_SESSION_TTL = timedelta(days=7)
# Log-in attempts are limited per client address (one address trying many accounts), per
# (e-mail, address) pair (one address trying one account), and per e-mail across all addresses
# with a higher ceiling (many addresses trying one account). The ceiling is higher than what one
# address may send, so no single address can lock an account's owner out.
LOGIN_PER_ADDRESS = RateLimitPolicy("login-address", limit=10, window_seconds=60)
LOGIN_PER_EMAIL_ADDRESS = RateLimitPolicy("login-email-address", limit=10, window_seconds=60)
LOGIN_PER_EMAIL = RateLimitPolicy("login-email", limit=30, window_seconds=60)
# Sign-up attempts per client address: each one may cost a slow hash and a new account.
SIGNUP_PER_ADDRESS = RateLimitPolicy("signup-address", limit=10, window_seconds=3600)
# Active (unrevoked, unexpired) API keys one user may hold.
DEFAULT_MAX_KEYS_PER_USER = 100
# Anything longer cannot be one of our tokens; refuse it before hashing.
MAX_BEARER_LENGTH = 512

_BAD_LOGIN = "invalid e-mail or password"
_BAD_TOKEN = "invalid, expired or revoked credentials"  # noqa: S105


def _canonical_id(value: str) -> str | None:
    """The canonical text of a UUID, or None when `value` is not one."""
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None


# --- users and sessions --------------------------------------------------------------------------


class RegisterUser:
    """Create a user and, in the same transaction, their inbox. Raises Forbidden (sign-up
    disabled), RateLimited (too many sign-ups from the client address), Invalid (fields; a
    common password), Conflict (e-mail taken).

    The limit is checked first and the e-mail second, so neither a flood nor a taken e-mail
    costs a slow hash. `client_address` None (the operator's CLI) is not limited.
    """

    def __init__(
        self,
        uow: RegistrationUnitOfWork,
        password_hasher: PasswordHasher,
        clock: Clock,
        ids: IdGenerator,
        *,
        allow_signup: bool = True,
        rate_limiter: RateLimiter | None = None,
        per_address: RateLimitPolicy = SIGNUP_PER_ADDRESS,
        common_passwords: Container[str] = frozenset(),
    ) -> None:
        self._uow = uow
        self._hasher = password_hasher
        self._clock = clock
        self._ids = ids
        self._allow_signup = allow_signup
        self._limiter = rate_limiter
        self._per_address = per_address
        self._common = common_passwords

    async def execute(
        self,
        email: str,
        password: str,
        name: str | None = None,
        client_address: str | None = None,
    ) -> User:
        if not self._allow_signup:
            raise Forbidden("sign-up is disabled on this server")
        if client_address is not None and self._limiter is not None:
            decision = await self._limiter.hit(self._per_address, client_address)
            if not decision.allowed:
                raise RateLimited(
                    "too many sign-ups from this address; try again later", decision.retry_after
                )
        errors = FieldErrors()
        canonical_email = errors.take("", normalize_email, email)
        clean_password = errors.take("", validate_password, password, self._common)
        clean_name = errors.take(None, normalize_name, name)
        errors.raise_if_any()
        async with self._uow as uow:
            if await uow.users.get_by_email(canonical_email) is not None:
                raise Conflict("a user with this e-mail address already exists")
        # Hash outside any transaction; the insert below still refuses an e-mail taken meanwhile.
        password_hash = await self._hasher.hash(clean_password)
        async with self._uow as uow:
            user = User(
                id=self._ids.new_id(),
                email=canonical_email,
                name=clean_name,
                password_hash=password_hash,
                created_at=self._clock.now(),
            )
            await uow.users.add(user)
            await open_inbox(
                uow.projects,
                uow.memberships,
                user_id=user.id,
                project_id=self._ids.new_id(),
                now=user.created_at,
            )
            await uow.commit()
        return user


@dataclass(frozen=True, slots=True)
class LoginResult:
    """A new session: the bearer `token` (shown once), when it expires, and whose it is."""

    token: str = field(repr=False)
    expires_at: datetime
    user: User
    session_id: str


class LogIn:
    """Open a session for e-mail + password.

    Raises RateLimited (too many attempts per client address, per e-mail and address, or per
    e-mail) and Unauthenticated (the same answer, after the same slow hashing, for an unknown
    e-mail and a wrong password). The password is checked in NFKC, as sign-up stores it; a hash
    made from the password as typed (before normalisation) still verifies and is replaced.
    Rehashes the password when the hasher's parameters changed since it was stored.
    """

    def __init__(
        self,
        uow: IdentityUnitOfWork,
        password_hasher: PasswordHasher,
        token_hasher: TokenHasher,
        secrets: SecretGenerator,
        clock: Clock,
        ids: IdGenerator,
        rate_limiter: RateLimiter,
        *,
        session_ttl: timedelta = DEFAULT_SESSION_TTL,
        per_address: RateLimitPolicy = LOGIN_PER_ADDRESS,
        per_email_address: RateLimitPolicy = LOGIN_PER_EMAIL_ADDRESS,
        per_email: RateLimitPolicy = LOGIN_PER_EMAIL,
    ) -> None:
        if session_ttl <= timedelta(0):
            raise ValueError("session_ttl must be positive")
        self._uow = uow
        self._hasher = password_hasher
        self._token_hasher = token_hasher
        self._secrets = secrets
        self._clock = clock
        self._ids = ids
        self._limiter = rate_limiter
        self._ttl = session_ttl
        self._per_address = per_address
        self._per_email_address = per_email_address
        self._per_email = per_email

    async def execute(self, email: str, password: str, client_address: str) -> LoginResult:
        try:
            canonical_email: str | None = normalize_email(email)
        except Invalid:
            canonical_email = None
        key = email_key(canonical_email if canonical_email is not None else email.strip())
        await self._check_rate(client_address, key)

        plausible = canonical_email is not None and 0 < len(password) <= PASSWORD_MAX_LENGTH
        typed = password[:PASSWORD_MAX_LENGTH]
        normalized = normalize_password(typed)
        # A password NFKC changes may also match a hash made before normalisation: two checks.
        candidates = [normalized] if normalized == typed else [normalized, typed]
        async with self._uow as uow:
            user = await uow.users.get_by_email(canonical_email) if canonical_email else None
            if user is None or not plausible:
                # Spend the same time as a real verification so timing does not tell.
                for candidate in candidates:
                    await self._hasher.hash(candidate or "-")
                raise Unauthenticated(_BAD_LOGIN)
            matched = None
            for candidate in candidates:
                if await self._hasher.verify(user.password_hash, candidate):
                    matched = candidate
                    break
            if matched is None:
                raise Unauthenticated(_BAD_LOGIN)
            if matched != normalized or self._hasher.needs_rehash(user.password_hash):
                new_hash = await self._hasher.hash(normalized)
                await uow.users.set_password_hash(user.id, new_hash)
                user = replace(user, password_hash=new_hash)
            token = self._secrets.session_token()
            now = self._clock.now()
            session = Session(
                id=self._ids.new_id(),
                user_id=user.id,
                token_hash=self._token_hasher.hash(token),
                created_at=now,
                expires_at=now + self._ttl,
            )
            await uow.sessions.add(session)
            await uow.commit()
        return LoginResult(
            token=token, expires_at=session.expires_at, user=user, session_id=session.id
        )

    async def _check_rate(self, client_address: str, key: str) -> None:
        """Count the attempt per address, then per pair, then per e-mail; a refusal stops the
        later counts, so attempts an address may not make do not use up the account's ceiling."""
        # Hash the e-mail so the limiter's store (Redis) holds no address in clear.
        digest = hashlib.sha256(key.encode()).hexdigest()[:32]
        for policy, subject in (
            (self._per_address, client_address),
            (self._per_email_address, f"{digest}:{client_address}"),
            (self._per_email, digest),
        ):
            decision = await self._limiter.hit(policy, subject)
            if not decision.allowed:
                raise RateLimited(
                    "too many login attempts; try again later", max(1, decision.retry_after)
                )


class LogOut:
    """Revoke the caller's session; its token stops working at once. Needs a session principal."""

    def __init__(
        self, uow: IdentityUnitOfWork, clock: Clock, cache: PrincipalCache | None = None
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._cache = cache

    async def execute(self, principal: Principal) -> None:
        if principal.kind is not PrincipalKind.SESSION:
            raise Forbidden("only a session token can be logged out")
        async with self._uow as uow:
            await uow.sessions.revoke(principal.credential_id, self._clock.now())
            await uow.commit()
        if self._cache is not None:
            await self._cache.evict(principal.credential_id)


class GetCurrentUser:
    """The user the caller acts as. Raises Unauthenticated when that user no longer exists."""

    def __init__(self, uow: IdentityUnitOfWork) -> None:
        self._uow = uow

    async def execute(self, principal: Principal) -> User:
        async with self._uow as uow:
            user = await uow.users.get(principal.user_id)
        if user is None:
            raise Unauthenticated(_BAD_TOKEN)
        return user


# --- API keys ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IssuedApiKey:
    """A new key: the stored record and the secret, which is shown to the caller only once."""

    key: ApiKey
    secret: str = field(repr=False)


class IssueApiKey:
    """Issue a key for the caller's user.

    Needs `keys:manage` (Forbidden). Invalid on `name` (1-100), `scopes` (non-empty, known) and
    `expires_at` (time-zone aware, in the future). A key may grant only scopes it holds itself
    (Forbidden); a session or the service may grant any. A key issued by a key records it
    (`created_by_key_id`) and cannot outlive it (Invalid on `expires_at`). A user holds at most
    `max_keys` active (unrevoked, unexpired) keys: Conflict beyond that.

    `project_ids` (None: unrestricted) restricts the key to 1-50 projects the user is a member
    of (Invalid on `project_ids[i]` otherwise); a restricted issuer may only issue keys
    restricted to a subset of its own projects (Forbidden). The access policy decides both.
    """

    def __init__(
        self,
        uow: IdentityUnitOfWork,
        token_hasher: TokenHasher,
        secrets: SecretGenerator,
        clock: Clock,
        ids: IdGenerator,
        *,
        max_keys: int = DEFAULT_MAX_KEYS_PER_USER,
        projects_of: Callable[[str], Awaitable[Set[str]]] | None = None,
    ) -> None:
        self._uow = uow
        self._token_hasher = token_hasher
        self._secrets = secrets
        self._clock = clock
        self._ids = ids
        self._max_keys = max_keys
        self._projects_of = projects_of

    async def execute(
        self,
        principal: Principal,
        name: str,
        scopes: Iterable[str],
        expires_at: datetime | None = None,
        *,
        project_ids: object = None,
    ) -> IssuedApiKey:
        principal.require(Scope.KEYS_MANAGE)
        now = self._clock.now()
        errors = FieldErrors()
        clean_name = errors.take("", normalize_key_name, name)
        granted: frozenset[Scope] = errors.take(frozenset(), parse_scopes, scopes)
        expiry = errors.take(None, validate_key_expiry, expires_at, now)
        errors.raise_if_any()
        if not granted <= principal.scopes:
            missing = ", ".join(sorted(granted - principal.scopes))
            raise Forbidden(f"a key cannot grant scopes it does not hold: {missing}")
        member_of: Set[str] = frozenset()
        if project_ids is not None and self._projects_of is not None:
            member_of = await self._projects_of(principal.user_id)
        restricted_to = POLICY.key_project_ids(principal, project_ids, member_of)
        secret = self._secrets.api_key()
        async with self._uow as uow:
            issuer = None
            if principal.kind is PrincipalKind.API_KEY:
                issuer = await uow.api_keys.get_issuer(principal.user_id, principal.credential_id)
                if issuer is None or not issuer.is_active(now):
                    raise Unauthenticated(_BAD_TOKEN)
            expiry = bound_expiry_by_issuer(expiry, issuer)
            # Counted inside the transaction; requests racing each other may pass it together.
            if await uow.api_keys.count_active(principal.user_id, now) >= self._max_keys:
                raise LimitReached(
                    f"this account already has {self._max_keys} active API keys, the most "
                    "allowed; revoke one (DELETE /v1/api-keys/{id}) before issuing another"
                )
            key = ApiKey(
                id=self._ids.new_id(),
                user_id=principal.user_id,
                name=clean_name,
                prefix=display_prefix(secret),
                key_hash=self._token_hasher.hash(secret),
                scopes=granted,
                created_at=now,
                expires_at=expiry,
                created_by_key_id=issuer.id if issuer is not None else None,
                project_ids=restricted_to,
            )
            await uow.api_keys.add(key)
            await uow.commit()
        return IssuedApiKey(key=key, secret=secret)


@dataclass(frozen=True, slots=True)
class ApiKeyPage:
    """One page of the key list and where the next one starts (None: this is the last)."""

    items: list[ApiKey]
    next_position: KeyListPosition | None


class ListApiKeys:
    """The caller's keys that are not revoked, newest first, a page at a time.
    Needs `keys:manage`; Invalid on `limit` outside 1-200."""

    def __init__(self, uow: IdentityUnitOfWork) -> None:
        self._uow = uow

    async def execute(
        self,
        principal: Principal,
        after: KeyListPosition | None = None,
        limit: int = KEY_LIST_DEFAULT_LIMIT,
    ) -> ApiKeyPage:
        principal.require(Scope.KEYS_MANAGE)
        validate_list_limit(limit)
        async with self._uow as uow:
            rows = await uow.api_keys.list_page(principal.user_id, after, limit + 1)
        items = rows[:limit]
        more = len(rows) > limit
        last = items[-1] if items else None
        position = KeyListPosition(last.created_at, last.id) if more and last else None
        return ApiKeyPage(items=items, next_position=position)


class RevokeApiKey:
    """Revoke one of the caller's keys and every key it issued, transitively, in one
    transaction; they all stop working at once. Needs `keys:manage`.

    NotFound for an unknown id, another user's key, or a key already revoked.
    """

    def __init__(
        self, uow: IdentityUnitOfWork, clock: Clock, cache: PrincipalCache | None = None
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._cache = cache

    async def execute(self, principal: Principal, key_id: str) -> None:
        principal.require(Scope.KEYS_MANAGE)
        canonical = _canonical_id(key_id)
        async with self._uow as uow:
            key = (
                await uow.api_keys.get_for_user(principal.user_id, canonical) if canonical else None
            )
            if key is None or key.revoked_at is not None:
                raise NotFound("no such API key")
            revoked = await uow.api_keys.revoke_tree(key.id, self._clock.now())
            await uow.commit()
        if self._cache is not None:
            for revoked_id in revoked:
                await self._cache.evict(revoked_id)


# --- bearer authentication -----------------------------------------------------------------------


class AuthenticateBearer:
    """Resolve a bearer token to a `Principal`, or raise Unauthenticated.

    `thk_...` is an API key (looked up by keyed hash; revoked or expired: refused). The service
    token (when configured) needs `acting_user_id` naming an existing user and acts as that user
    with all scopes. Anything else is a session token. One lookup per call; a key's
    `last_used_at` is written at most once a minute.

    With a `PrincipalCache`, a resolved principal is kept for `cache_ttl` (never beyond the
    credential's own expiry), so most calls touch no database; LogOut and RevokeApiKey evict it.
    A key's `last_used_at` then advances once per cache period of use rather than per minute.
    Long-lived: it opens a fresh unit of work per lookup.
    """

    def __init__(
        self,
        uow_factory: Callable[[], IdentityUnitOfWork],
        token_hasher: TokenHasher,
        clock: Clock,
        *,
        service_token: str | None = None,
        cache: PrincipalCache | None = None,
        cache_ttl: timedelta = timedelta(seconds=60),
    ) -> None:
        self._uow_factory = uow_factory
        self._token_hasher = token_hasher
        self._clock = clock
        self._cache = cache
        self._cache_ttl = cache_ttl
        # Compare fixed-length digests so neither content nor length of the secret leaks.
        self._service_digest = (
            hashlib.sha256(service_token.encode()).digest() if service_token else None
        )

    def cache_key(self, token: str, acting_user_id: str | None = None) -> str:
        """The principal cache key of a bearer token (its keyed hash; for the service token the
        acting user), or Unauthenticated when the token cannot be valid at all."""
        if not token or len(token) > MAX_BEARER_LENGTH:
            raise Unauthenticated(_BAD_TOKEN)
        if not token.startswith(API_KEY_PREFIX) and self._is_service_token(token):
            user_id = _canonical_id(acting_user_id) if acting_user_id else None
            if user_id is None:
                raise Unauthenticated("the service token needs X-Acting-User naming a user")
            return f"service:{user_id}"
        return self._token_hasher.hash(token)

    async def execute(self, token: str, acting_user_id: str | None = None) -> Principal:
        key = self.cache_key(token, acting_user_id)
        if token.startswith(API_KEY_PREFIX):
            return await self._cached(key, lambda: self._api_key(key))
        if key.startswith("service:"):
            user_id = key.removeprefix("service:")
            return await self._cached(key, lambda: self._service(user_id))
        return await self._cached(key, lambda: self._session(key))

    async def _cached(
        self, key: str, resolve: Callable[[], Awaitable[tuple[Principal, datetime | None]]]
    ) -> Principal:
        if self._cache is None:
            return (await resolve())[0]
        cached = await self._cache.get(key)
        if cached is not None:
            return cached
        principal, expires_at = await resolve()
        ttl = self._cache_ttl
        if expires_at is not None:
            ttl = min(ttl, expires_at - self._clock.now())
        seconds = int(ttl.total_seconds())
        if seconds >= 1:
            await self._cache.put(key, principal, seconds)
        return principal

    def _is_service_token(self, token: str) -> bool:
        if self._service_digest is None:
            return False
        digest = hashlib.sha256(token.encode()).digest()
        return hmac.compare_digest(digest, self._service_digest)

    async def _api_key(self, key_hash: str) -> tuple[Principal, datetime | None]:
        async with self._uow_factory() as uow:
            key = await uow.api_keys.get_by_hash(key_hash)
            now = self._clock.now()
            if key is None or not key.is_active(now):
                raise Unauthenticated(_BAD_TOKEN)
            if key.last_use_is_stale(now):
                await uow.api_keys.touch_last_used(key.id, now)
                await uow.commit()
        principal = Principal(
            user_id=key.user_id,
            kind=PrincipalKind.API_KEY,
            scopes=key.scopes,
            credential_id=key.id,
            actor=f"api_key:{key.id}",
            project_ids=key.project_ids,
        )
        return principal, key.expires_at

    async def _session(self, token_hash: str) -> tuple[Principal, datetime | None]:
        async with self._uow_factory() as uow:
            session = await uow.sessions.get_by_token_hash(token_hash)
        if session is None or not session.is_active(self._clock.now()):
            raise Unauthenticated(_BAD_TOKEN)
        principal = Principal(
            user_id=session.user_id,
            kind=PrincipalKind.SESSION,
            scopes=ALL_SCOPES,
            credential_id=session.id,
            actor=f"user:{session.user_id}",
        )
        return principal, session.expires_at

    async def _service(self, user_id: str) -> tuple[Principal, datetime | None]:
        async with self._uow_factory() as uow:
            user = await uow.users.get(user_id)
        if user is None:
            raise Unauthenticated("X-Acting-User names no user")
        principal = Principal(
            user_id=user.id,
            kind=PrincipalKind.SERVICE,
            scopes=ALL_SCOPES,
            credential_id="service",
            actor="service",
        )
        return principal, None
