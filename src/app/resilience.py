"""Policies for a dependency that is down, applied where the adapters are composed."""

from __future__ import annotations

import structlog

from adapters.http.metrics import RATE_LIMIT_DECISIONS
from domain.ports import RateLimitDecision, RateLimiter, RateLimitPolicy

log = structlog.get_logger("taskhub.resilience")


class FailOpenRateLimiter:
    """When the limiter's backend (Redis) fails, serve the request anyway: count it as
    `failed_open`, warn, and answer as if the window were empty. Availability beats limits;
    /health/ready reports the outage."""

    def __init__(self, inner: RateLimiter) -> None:
        self._inner = inner

    async def hit(self, policy: RateLimitPolicy, key: str) -> RateLimitDecision:
        try:
            decision = await self._inner.hit(policy, key)
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
