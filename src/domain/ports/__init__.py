"""Ports: the interfaces the domain needs from the outside world, as typing.Protocols.

Aggregate-specific repositories live beside their aggregate's use cases and are reached through
the UnitOfWork, so one use case is one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Protocol, Self


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware, in UTC."""
        ...


class IdGenerator(Protocol):
    def new_id(self) -> str:
        """A new time-ordered UUID (version 7) as its canonical string."""
        ...


class HealthProbe(Protocol):
    """Something `/health/ready` asks: raises (or times out) when the dependency is down."""

    name: str

    async def check(self) -> None: ...


class UnitOfWorkBase(Protocol):
    """One transaction. `async with uow:` opens it, `commit()` makes it stick; leaving the block
    without a commit rolls back."""

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def commit(self) -> None: ...

    async def rollback(self) -> None: ...


# --- rate limiting -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RateLimitPolicy:
    """`limit` requests per `window_seconds` under one named policy ("default", "login", ...)."""

    name: str
    limit: int
    window_seconds: int

    def __post_init__(self) -> None:
        if self.limit < 1 or self.window_seconds < 1:
            raise ValueError("a rate-limit policy needs limit >= 1 and window >= 1 s")


@dataclass(frozen=True, slots=True)
class RateLimitDecision:
    """The answer for one request: allowed or not, and what the RateLimit-* headers say."""

    allowed: bool
    limit: int
    remaining: int
    reset_after: int  # whole seconds until the window has fully freed up
    retry_after: int  # whole seconds to wait when not allowed (0 when allowed)


class RateLimiter(Protocol):
    async def hit(self, policy: RateLimitPolicy, key: str, cost: int = 1) -> RateLimitDecision:
        """Count a request for `key` under `policy` as `cost` requests (all or nothing),
        atomically, and decide."""
        ...


class ConcurrencyLimiter(Protocol):
    """At most `limit` operations of one kind running at once per subject (for example a user's
    searches), wherever they run."""

    limit: int

    async def acquire(self, subject: str) -> str | None:
        """A ticket for one of `subject`'s slots, or None when all `limit` are taken."""
        ...

    async def release(self, subject: str, ticket: str) -> None:
        """Give the slot of `ticket` back."""
        ...


# --- idempotency ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """A finished answer kept for replay: status, body bytes and the headers that matter."""

    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    """What the store holds for a key: the request's fingerprint and, once done, the response
    (None while the first request is still in flight)."""

    fingerprint: str
    response: StoredResponse | None


class IdempotencyStore(Protocol):
    async def begin(self, key: str, fingerprint: str, ttl_seconds: int) -> IdempotencyRecord | None:
        """Claim `key` atomically. None: this caller holds it now and must `complete` or `release`
        it. Otherwise the record already there (in flight when its response is None)."""
        ...

    async def complete(
        self, key: str, fingerprint: str, response: StoredResponse, ttl_seconds: int
    ) -> None:
        """Store the finished response for replay for `ttl_seconds`."""
        ...

    async def release(self, key: str) -> None:
        """Forget an in-flight claim (the first request failed), so a retry can run."""
        ...
