"""The account limiter keeps limiting in the process while its shared backend is down."""

from __future__ import annotations

from adapters.memory.rate_limit import MemoryRateLimiter
from app.rate_limit_fallback import FallbackRateLimiter
from domain.ports import RateLimitDecision, RateLimitPolicy

POLICY = RateLimitPolicy("login-address", 3, 3600)


class Switchable:
    """A shared limiter that can be taken down; allows everything while up."""

    def __init__(self) -> None:
        self.down = False
        self.calls = 0

    async def hit(self, policy: RateLimitPolicy, key: str, cost: int = 1) -> RateLimitDecision:
        self.calls += 1
        if self.down:
            raise ConnectionError("redis is down")
        return RateLimitDecision(True, policy.limit, policy.limit, 0, 0)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_limits_still_apply_in_the_process_while_the_primary_is_down() -> None:
    primary = Switchable()
    primary.down = True
    limiter = FallbackRateLimiter(primary, MemoryRateLimiter())
    allowed = [(await limiter.hit(POLICY, "addr:1")).allowed for _ in range(5)]
    assert allowed == [True, True, True, False, False]


async def test_the_primary_is_left_alone_for_a_while_after_a_failure_then_used_again() -> None:
    primary, clock = Switchable(), Clock()
    limiter = FallbackRateLimiter(
        primary, MemoryRateLimiter(), retry_primary_after=5.0, monotonic=clock
    )
    primary.down = True
    await limiter.hit(POLICY, "a")
    await limiter.hit(POLICY, "a")
    assert primary.calls == 1  # the second hit did not wait for a dead backend again
    primary.down = False
    clock.now += 5.0
    decision = await limiter.hit(POLICY, "a")
    assert primary.calls == 2
    assert decision.remaining == POLICY.limit  # the primary's answer, not the fallback's
