from __future__ import annotations

from app.resilience import FailOpenRateLimiter, FailSafePrincipalCache
from domain.auth import Principal, PrincipalKind, Scope
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


class TokenKeys:
    def cache_key(self, token: str, acting_user: str | None) -> str:
        return f"key:{token}"


class ScriptedGate:
    def __init__(self, *answers: tuple[Principal, RateLimitDecision] | None) -> None:
        self.answers = list(answers)
        self.keys: list[str] = []

    async def admit(
        self, cache_key: str, policy: RateLimitPolicy
    ) -> tuple[Principal, RateLimitDecision] | None:
        self.keys.append(cache_key)
        return self.answers.pop(0)


def _decisions(outcome: str) -> float:
    from adapters.http.metrics import RATE_LIMIT_DECISIONS

    value: float = RATE_LIMIT_DECISIONS.labels(POLICY.name, outcome)._value.get()
    return value


async def test_fast_admission_counts_each_decision_of_the_gate_once() -> None:
    from app.resilience import FastAdmission

    principal = Principal("u", PrincipalKind.API_KEY, frozenset({Scope.TASKS_READ}), "k", "a")
    allowed = RateLimitDecision(True, 5, 4, 12, 0)
    limited = RateLimitDecision(False, 5, 0, 60, 12)
    gate = ScriptedGate((principal, allowed), (principal, limited), None)
    admit = FastAdmission(TokenKeys(), gate, POLICY)  # type: ignore[arg-type]
    before = _decisions("allowed"), _decisions("limited")

    assert await admit("t1", None) == (principal, allowed)
    assert await admit("t1", None) == (principal, limited)
    assert await admit("t2", None) is None  # a miss counts nothing: the slow path will

    assert (_decisions("allowed"), _decisions("limited")) == (before[0] + 1, before[1] + 1)
    assert gate.keys == ["key:t1", "key:t1", "key:t2"]
