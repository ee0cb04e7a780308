from __future__ import annotations

from app.resilience import FailOpenRateLimiter, FailSafePrincipalCache
from domain.auth import Principal, PrincipalKind, Scope
from domain.ports import RateLimitDecision, RateLimitPolicy

POLICY = RateLimitPolicy("default", 5, 60)


class BrokenLimiter:
    async def hit(self, policy: RateLimitPolicy, key: str, cost: int = 1) -> RateLimitDecision:
        raise ConnectionError("redis is down")


class Refusing:
    async def hit(self, policy: RateLimitPolicy, key: str, cost: int = 1) -> RateLimitDecision:
        return RateLimitDecision(False, policy.limit, 0, 30, 30)


async def test_a_broken_limiter_lets_requests_through() -> None:
    decision = await FailOpenRateLimiter(BrokenLimiter()).hit(POLICY, "user:1")
    assert decision.allowed
    assert decision.limit == 5


async def test_a_working_limiter_is_obeyed() -> None:
    decision = await FailOpenRateLimiter(Refusing()).hit(POLICY, "user:1")
    assert not decision.allowed
    assert decision.retry_after == 30


class BrokenCache:
    async def get(self, key: str) -> Principal | None:
        raise ConnectionError("down")

    async def put(self, key: str, principal: Principal, ttl_seconds: int) -> None:
        raise ConnectionError("down")

    async def evict(self, credential_id: str) -> None:
        raise ConnectionError("down")


async def test_a_broken_principal_cache_is_a_miss_and_never_raises() -> None:
    cache = FailSafePrincipalCache(BrokenCache())
    principal = Principal("u", PrincipalKind.SESSION, frozenset({Scope.TASKS_READ}), "s", "a")
    assert await cache.get("k") is None
    await cache.put("k", principal, 10)
    await cache.evict("s")


def _decisions(outcome: str) -> float:
    from adapters.http.metrics import RATE_LIMIT_DECISIONS

    value: float = RATE_LIMIT_DECISIONS.labels(POLICY.name, outcome)._value.get()
    return value


def test_the_decision_counter_counts_each_outcome_under_its_label() -> None:
    from app.resilience import decision_counter

    counted = decision_counter(POLICY)
    before = _decisions("allowed"), _decisions("limited")
    counted(True)
    counted(True)
    counted(False)
    assert (_decisions("allowed"), _decisions("limited")) == (before[0] + 2, before[1] + 1)
