from __future__ import annotations

from app.resilience import FailOpenRateLimiter
from domain.ports import RateLimitDecision, RateLimitPolicy

POLICY = RateLimitPolicy("default", 5, 60)


class BrokenLimiter:
    async def hit(self, policy: RateLimitPolicy, key: str) -> RateLimitDecision:
        raise ConnectionError("redis is down")


class Refusing:
    async def hit(self, policy: RateLimitPolicy, key: str) -> RateLimitDecision:
        return RateLimitDecision(False, policy.limit, 0, 30, 30)


async def test_a_broken_limiter_lets_requests_through() -> None:
    decision = await FailOpenRateLimiter(BrokenLimiter()).hit(POLICY, "user:1")
    assert decision.allowed
    assert decision.limit == 5


async def test_a_working_limiter_is_obeyed() -> None:
    decision = await FailOpenRateLimiter(Refusing()).hit(POLICY, "user:1")
    assert not decision.allowed
    assert decision.retry_after == 30
