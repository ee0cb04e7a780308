"""Admission: authenticate and count in one step (the memory twin), and the Redis adapter's
choice between its gate and its fallback (with a scripted gate; the script itself is tested on
real Redis in tests/integration/redis)."""

from __future__ import annotations

import pytest

from adapters.memory.admission import MemoryAdmission
from adapters.redis.admission import RedisAdmission
from domain.auth import ALL_SCOPES, Principal, PrincipalKind
from domain.errors import Unauthenticated
from domain.ports import RateLimitDecision, RateLimitPolicy
from tests.unit.identity.support import PASSWORD, CountingRateLimiter, Identity

POLICY = RateLimitPolicy("default", 3, 60)


def twin(identity: Identity) -> MemoryAdmission:
    return MemoryAdmission(identity.authenticate().execute, identity.limiter, POLICY)


async def test_a_session_is_admitted_and_counted_against_its_user(identity: Identity) -> None:
    user = await identity.new_user()
    login = await identity.login().execute("ada@example.com", PASSWORD, "10.0.0.1")
    admission = twin(identity)

    decisions = [(await admission.admit(login.token, None))[1] for _ in range(4)]

    principal, _ = await admission.admit(login.token, None)
    assert (principal.user_id, principal.kind) == (user.id, PrincipalKind.SESSION)
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert identity.limiter.counts["default", principal.rate_limit_subject] == 5


async def test_a_bad_token_is_refused_and_counts_nothing(identity: Identity) -> None:
    admission = twin(identity)
    with pytest.raises(Unauthenticated):
        await admission.admit("not-a-token", None)
    assert not identity.limiter.counts


async def test_anonymous_calls_count_per_client_address(identity: Identity) -> None:
    admission = twin(identity)
    first = await admission.admit_anonymous("10.0.0.1")
    await admission.admit_anonymous("10.0.0.1")
    other = await admission.admit_anonymous("10.0.0.2")
    assert (first.remaining, other.remaining) == (2, 2)
    assert identity.limiter.counts["default", "addr:10.0.0.1"] == 2


# --- the Redis adapter around its gate ------------------------------------------------------------

PRINCIPAL = Principal("u1", PrincipalKind.API_KEY, ALL_SCOPES, "k1", "api_key:k1")
ALLOWED = RateLimitDecision(True, 3, 2, 20, 0)
LIMITED = RateLimitDecision(False, 3, 0, 60, 20)


class ScriptedGate:
    policy = POLICY

    def __init__(self, *answers: tuple[Principal, RateLimitDecision] | Exception | None) -> None:
        self.answers = list(answers)
        self.keys: list[str] = []

    async def admit(self, cache_key: str) -> tuple[Principal, RateLimitDecision] | None:
        self.keys.append(cache_key)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


class Fallback:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str | None]] = []

    async def __call__(self, token: str, acting_user: str | None) -> Principal:
        self.calls.append((token, acting_user))
        if token == "bad":
            raise Unauthenticated("no")
        return PRINCIPAL


def redis_admission(
    gate: ScriptedGate,
) -> tuple[RedisAdmission, Fallback, CountingRateLimiter, list[bool]]:
    fallback, limiter, counted = Fallback(), CountingRateLimiter(), list[bool]()
    admission = RedisAdmission(
        gate,  # type: ignore[arg-type]
        cache_key=lambda token, _acting: f"hash:{token}",
        authenticate=fallback,
        limiter=limiter,
        counted=counted.append,
    )
    return admission, fallback, limiter, counted


async def test_a_gate_hit_needs_no_fallback_and_each_decision_is_counted_once() -> None:
    gate = ScriptedGate((PRINCIPAL, ALLOWED), (PRINCIPAL, LIMITED))
    admission, fallback, limiter, counted = redis_admission(gate)

    assert await admission.admit("t", None) == (PRINCIPAL, ALLOWED)
    assert await admission.admit("t", None) == (PRINCIPAL, LIMITED)

    assert gate.keys == ["hash:t", "hash:t"]
    assert counted == [True, False]
    assert fallback.calls == []
    assert not limiter.counts


@pytest.mark.parametrize("gate_answer", [None, ConnectionError("redis is down")])
async def test_a_miss_or_a_failed_gate_takes_the_fallback(
    gate_answer: Exception | None,
) -> None:
    admission, fallback, limiter, counted = redis_admission(ScriptedGate(gate_answer))

    principal, decision = await admission.admit("t", "acting")

    assert principal == PRINCIPAL
    assert decision.allowed
    assert fallback.calls == [("t", "acting")]
    assert limiter.counts == {("default", PRINCIPAL.rate_limit_subject): 1}
    assert counted == []  # the limiter counts its own decisions


async def test_the_fallback_refuses_a_bad_token_and_counts_nothing() -> None:
    admission, _, limiter, _ = redis_admission(ScriptedGate(None))
    with pytest.raises(Unauthenticated):
        await admission.admit("bad", None)
    assert not limiter.counts
