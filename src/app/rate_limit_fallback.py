"""A rate limiter that keeps limiting while its shared backend is down: the account limits
(log-in, sign-up) must never switch off just because Redis is unreachable."""

from __future__ import annotations

import time
from collections.abc import Callable

import structlog

from adapters.http.metrics import RATE_LIMIT_DECISIONS
from domain.ports import RateLimitDecision, RateLimiter, RateLimitPolicy

log = structlog.get_logger("taskhub.resilience")


class FallbackRateLimiter:
    """Ask `primary` (shared by every worker: Redis); when it fails, decide with `fallback` (one
    process's own counts) instead of letting the request through.

    After a failure the primary is left alone for `retry_primary_after` seconds, so an outage
    costs one timeout per process and period rather than one per limit checked. Counts made in
    the fallback stay in this process: with N processes an address gets at most N times its
    budget during an outage, which still caps password guessing.
    """

    def __init__(
        self,
        primary: RateLimiter,
        fallback: RateLimiter,
        *,
        retry_primary_after: float = 5.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._primary = primary
        self._fallback = fallback
        self._retry_after = retry_primary_after
        self._now = monotonic
        self._primary_down_until = float("-inf")

    async def hit(self, policy: RateLimitPolicy, key: str, cost: int = 1) -> RateLimitDecision:
        if self._now() >= self._primary_down_until:
            try:
                decision = await self._primary.hit(policy, key, cost)
            except Exception as exc:
                self._primary_down_until = self._now() + self._retry_after
                log.warning(
                    "rate limiter unavailable; counting in this process",
                    policy=policy.name,
                    error=type(exc).__name__,
                )
            else:
                RATE_LIMIT_DECISIONS.labels(policy.name, _label(decision)).inc()
                return decision
        decision = await self._fallback.hit(policy, key, cost)
        RATE_LIMIT_DECISIONS.labels(policy.name, "fallback_" + _label(decision)).inc()
        return decision


def _label(decision: RateLimitDecision) -> str:
    return "allowed" if decision.allowed else "limited"
