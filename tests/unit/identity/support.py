"""Test doubles and wiring for the identity unit tests: memory adapters, cheap Argon2, fakes."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from adapters.memory.projects import MemoryProjectUnitOfWork
from adapters.memory.uow import MemoryDatabase
from adapters.security.common_passwords import common_passwords
from adapters.security.ids import UuidV7Generator
from adapters.security.passwords import Argon2idPasswordHasher
from adapters.security.tokens import HmacTokenHasher, RandomSecretGenerator
from domain.auth import ALL_SCOPES, Principal, PrincipalKind, Scope
from domain.ports import RateLimitDecision, RateLimitPolicy
from domain.ports.identity import PrincipalCache
from domain.use_cases.identity import (
    AuthenticateBearer,
    IssueApiKey,
    LogIn,
    RegisterUser,
)
from domain.users import User

PASSWORD = "correct horse battery"
SERVICE_TOKEN = "service-token-0123456789abcdef"


class FakeClock:
    def __init__(self) -> None:
        self.current = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.current

    def advance(self, **delta: float) -> None:
        self.current += timedelta(**delta)


class CountingRateLimiter:
    """Allows `policy.limit` hits per (policy, key), forever; records every key it saw."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str]] = Counter()

    async def hit(self, policy: RateLimitPolicy, key: str, cost: int = 1) -> RateLimitDecision:
        self.counts[policy.name, key] += cost
        used = self.counts[policy.name, key]
        allowed = used <= policy.limit
        return RateLimitDecision(
            allowed=allowed,
            limit=policy.limit,
            remaining=max(0, policy.limit - used),
            reset_after=policy.window_seconds,
            retry_after=0 if allowed else policy.window_seconds,
        )


def cheap_hasher(time_cost: int = 1) -> Argon2idPasswordHasher:
    return Argon2idPasswordHasher(time_cost=time_cost, memory_cost=8 * 1024, parallelism=1)


@dataclass
class Identity:
    """Everything a use case needs, wired to one in-memory database."""

    db: MemoryDatabase = field(default_factory=MemoryDatabase)
    clock: FakeClock = field(default_factory=FakeClock)
    ids: UuidV7Generator = field(default_factory=UuidV7Generator)
    hasher: Argon2idPasswordHasher = field(default_factory=cheap_hasher)
    tokens: HmacTokenHasher = field(default_factory=lambda: HmacTokenHasher("k" * 32))
    secrets: RandomSecretGenerator = field(default_factory=RandomSecretGenerator)
    limiter: CountingRateLimiter = field(default_factory=CountingRateLimiter)

    def uow(self) -> MemoryProjectUnitOfWork:
        return MemoryProjectUnitOfWork(self.db)

    def register(self, *, allow_signup: bool = True, **kwargs: object) -> RegisterUser:
        kwargs.setdefault("common_passwords", common_passwords())
        return RegisterUser(
            self.uow(),
            self.hasher,
            self.clock,
            self.ids,
            allow_signup=allow_signup,
            rate_limiter=self.limiter,
            **kwargs,  # type: ignore[arg-type]
        )

    def login(self, **kwargs: object) -> LogIn:
        return LogIn(
            self.uow(),
            self.hasher,
            self.tokens,
            self.secrets,
            self.clock,
            self.ids,
            self.limiter,
            **kwargs,  # type: ignore[arg-type]
        )

    def authenticate(self, service_token: str | None = SERVICE_TOKEN) -> AuthenticateBearer:
        return AuthenticateBearer(self.uow, self.tokens, self.clock, service_token=service_token)

    def issue_key(self) -> IssueApiKey:
        return IssueApiKey(self.uow(), self.tokens, self.secrets, self.clock, self.ids)

    async def new_user(self, email: str = "ada@example.com") -> User:
        return await self.register().execute(email, PASSWORD, "Ada")


def session_principal(user: User) -> Principal:
    return Principal(user.id, PrincipalKind.SESSION, ALL_SCOPES, "sess", f"user:{user.id}")


def key_principal(user: User, *scopes: Scope) -> Principal:
    return Principal(user.id, PrincipalKind.API_KEY, frozenset(scopes), "key", "api_key:key")


class PausedFill:
    """A principal cache whose `put` stops, after the credential was read and before the entry
    is written, until `release` is set: the window in which a revocation can land."""

    def __init__(self, inner: PrincipalCache) -> None:
        self.inner = inner
        self.reached = asyncio.Event()
        self.release = asyncio.Event()

    async def get(self, key: str) -> Principal | None:
        return await self.inner.get(key)

    async def put(self, key: str, principal: Principal, ttl_seconds: int) -> None:
        self.reached.set()
        await self.release.wait()
        await self.inner.put(key, principal, ttl_seconds)

    async def evict(self, credential_id: str) -> None:
        await self.inner.evict(credential_id)
