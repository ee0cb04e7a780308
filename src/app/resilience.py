"""Policies for a dependency that is down, applied where the adapters are composed."""

from __future__ import annotations

from collections.abc import Callable

import structlog

from adapters.http.metrics import RATE_LIMIT_DECISIONS
from domain.auth import Principal
from domain.ports import RateLimitDecision, RateLimiter, RateLimitPolicy
from domain.ports.identity import PrincipalCache

log = structlog.get_logger("taskhub.resilience")


class FailOpenRateLimiter:
    """When the limiter's backend (Redis) fails, serve the request anyway: count it as
    `failed_open`, warn, and answer as if the window were empty. Availability beats limits;
    /health/ready reports the outage."""

    def __init__(self, inner: RateLimiter) -> None:
        self._inner = inner

    async def hit(self, policy: RateLimitPolicy, key: str, cost: int = 1) -> RateLimitDecision:
        try:
            decision = await self._inner.hit(policy, key, cost)
        except Exception as exc:
            RATE_LIMIT_DECISIONS.labels(policy.name, "failed_open").inc()
            log.warning("rate limiter unavailable; failing open", error=type(exc).__name__)
            return RateLimitDecision(
                allowed=True,
                limit=policy.limit,
                remaining=policy.limit,
                reset_after=0,
                retry_after=0,
            )
        RATE_LIMIT_DECISIONS.labels(policy.name, "allowed" if decision.allowed else "limited").inc()
        return decision


class FailSafePrincipalCache:
    """A principal cache whose backend may be down: a failed read is a miss (the database
    answers instead), a failed write is skipped. A failed eviction is logged as an error: the
    credential is revoked in the database, and a stale entry can live at most its TTL."""

    def __init__(self, inner: PrincipalCache) -> None:
        self._inner = inner

    async def get(self, key: str) -> Principal | None:
        try:
            return await self._inner.get(key)
        except Exception as exc:
            log.warning("principal cache unavailable; using the database", error=type(exc).__name__)
            return None

    async def put(self, key: str, principal: Principal, ttl_seconds: int) -> None:
        try:
            await self._inner.put(key, principal, ttl_seconds)
        except Exception as exc:
            log.warning("principal cache unavailable; not caching", error=type(exc).__name__)

    async def evict(self, credential_id: str) -> None:
        try:
            await self._inner.evict(credential_id)
        except Exception as exc:
            log.error(
                "principal cache eviction failed; a cached entry may outlive the revocation "
                "by up to PRINCIPAL_CACHE_TTL",
                error=type(exc).__name__,
                credential_id=credential_id,
            )


def decision_counter(policy: RateLimitPolicy) -> Callable[[bool], None]:
    """Count a decision taken under `policy` without the limiter (the admission gate's)."""
    allowed = RATE_LIMIT_DECISIONS.labels(policy.name, "allowed").inc
    limited = RATE_LIMIT_DECISIONS.labels(policy.name, "limited").inc

    def counted(was_allowed: bool) -> None:
        (allowed if was_allowed else limited)()

    return counted
