"""MemoryRateLimiter under a controlled clock: admits, refill, header values, eviction."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.memory.rate_limit import MemoryRateLimiter
from domain.ports import RateLimitDecision, RateLimitPolicy
from domain.rate_limits import gcra_parameters

SECOND = 1_000_000
FIVE_PER_MINUTE = RateLimitPolicy("default", 5, 60)  # one request every 12 s


class FakeClock:
    def __init__(self, start_us: int = 1_700_000_000 * SECOND) -> None:
        self.now_us = start_us

    def __call__(self) -> int:
        return self.now_us

    def advance(self, seconds: float) -> None:
        self.now_us += round(seconds * SECOND)


def make_limiter(min_sweep: int = 1024) -> tuple[MemoryRateLimiter, FakeClock]:
    clock = FakeClock()
    return MemoryRateLimiter(clock_us=clock, min_sweep=min_sweep), clock


async def test_a_fresh_subject_gets_exactly_the_limit_with_counting_down_headers() -> None:
    limiter, _ = make_limiter()
    decisions = [await limiter.hit(FIVE_PER_MINUTE, "alice") for _ in range(7)]
    assert decisions[:5] == [
        RateLimitDecision(
            allowed=True, limit=5, remaining=4 - i, reset_after=12 * (i + 1), retry_after=0
        )
        for i in range(5)
    ]
    assert (
        decisions[5:]
        == [RateLimitDecision(allowed=False, limit=5, remaining=0, reset_after=60, retry_after=12)]
        * 2
    )


async def test_one_request_refills_per_interval_and_not_a_microsecond_earlier() -> None:
    limiter, clock = make_limiter()
    for _ in range(5):
        await limiter.hit(FIVE_PER_MINUTE, "alice")

    clock.advance(12 - 1e-6)
    early = await limiter.hit(FIVE_PER_MINUTE, "alice")
    assert not early.allowed
    assert early.retry_after == 1  # 1 µs, rounded up to a whole second

    clock.advance(1e-6)
    refilled = await limiter.hit(FIVE_PER_MINUTE, "alice")
    assert refilled == RateLimitDecision(True, 5, 0, 60, 0)
    assert not (await limiter.hit(FIVE_PER_MINUTE, "alice")).allowed


async def test_retry_after_is_honest_and_refusals_cost_nothing() -> None:
    limiter, clock = make_limiter()
    policy = RateLimitPolicy("login", 2, 60)  # one every 30 s
    await limiter.hit(policy, "1.2.3.4")
    clock.advance(10)
    await limiter.hit(policy, "1.2.3.4")  # TAT is now start + 60 s
    clock.advance(5)
    refused = [await limiter.hit(policy, "1.2.3.4") for _ in range(20)]
    assert {d.retry_after for d in refused} == {15}
    assert {d.reset_after for d in refused} == {45}

    clock.advance(15)
    assert (await limiter.hit(policy, "1.2.3.4")).allowed


async def test_an_idle_subject_is_full_again_after_the_window() -> None:
    limiter, clock = make_limiter()
    for _ in range(5):
        await limiter.hit(FIVE_PER_MINUTE, "alice")
    clock.advance(60)
    assert await limiter.hit(FIVE_PER_MINUTE, "alice") == RateLimitDecision(True, 5, 4, 12, 0)


async def test_subjects_and_policies_are_counted_apart() -> None:
    limiter, _ = make_limiter()
    login = RateLimitPolicy("login", 1, 60)
    assert (await limiter.hit(login, "alice")).allowed
    assert not (await limiter.hit(login, "alice")).allowed
    assert (await limiter.hit(login, "bob")).allowed
    assert (await limiter.hit(FIVE_PER_MINUTE, "alice")).allowed


async def test_an_uneven_interval_still_admits_exactly_the_limit_at_once() -> None:
    limiter, _ = make_limiter()
    policy = RateLimitPolicy("default", 7, 60)
    decisions = [await limiter.hit(policy, "alice") for _ in range(8)]
    assert [d.allowed for d in decisions] == [True] * 7 + [False]
    assert [d.remaining for d in decisions] == [6, 5, 4, 3, 2, 1, 0, 0]
    assert decisions[6].reset_after == 61  # 7 x 8.571429 s = 60.000003 s, rounded up


async def test_expired_subjects_are_swept_so_memory_stays_bounded() -> None:
    limiter, clock = make_limiter(min_sweep=8)
    policy = RateLimitPolicy("default", 10, 1)
    for i in range(8):
        await limiter.hit(policy, f"client-{i}")
    assert len(limiter) == 8  # the sweep at 8 entries keeps live ones
    for round_ in range(50):
        clock.advance(2)  # every earlier entry has expired
        for i in range(3):
            await limiter.hit(policy, f"round-{round_}-{i}")
    assert len(limiter) < 16  # 158 subjects seen, only a handful kept


async def test_a_sweep_keeps_subjects_that_are_still_limited() -> None:
    limiter, clock = make_limiter(min_sweep=4)
    strict = RateLimitPolicy("login", 1, 3600)
    assert (await limiter.hit(strict, "alice")).allowed
    for i in range(100):
        clock.advance(1)
        await limiter.hit(RateLimitPolicy("default", 1, 1), f"other-{i}")
    refused = await limiter.hit(strict, "alice")
    assert not refused.allowed
    assert refused.retry_after == 3600 - 100


@settings(max_examples=200, deadline=None)
@given(
    limit=st.integers(min_value=1, max_value=20),
    window=st.sampled_from([1, 60, 3600]),
    gaps_ms=st.lists(st.integers(min_value=0, max_value=5_000), min_size=1, max_size=80),
)
async def test_no_span_admits_more_than_the_burst_plus_the_refill(
    limit: int, window: int, gaps_ms: list[int]
) -> None:
    limiter, clock = make_limiter()
    policy = RateLimitPolicy("p", limit, window)
    interval = gcra_parameters(policy).interval_us
    arrivals: list[int] = []
    admitted: list[int] = []
    for gap in gaps_ms:
        clock.advance(gap / 1000)
        arrivals.append(clock.now_us)
        if (await limiter.hit(policy, "k")).allowed:
            admitted.append(clock.now_us)
    # the first `limit` requests always pass (a fresh subject has its whole burst) ...
    assert admitted[:limit] == arrivals[:limit]
    # ... and no span of time admits more than the burst plus what refilled during it
    for first in range(len(admitted)):
        for last in range(first, len(admitted)):
            span = admitted[last] - admitted[first]
            assert last - first + 1 <= limit + span // interval


async def test_a_weighted_hit_is_the_same_as_that_many_single_hits_or_refused_whole() -> None:
    weighted, clock = make_limiter()
    single, _ = make_limiter()
    decision = await weighted.hit(FIVE_PER_MINUTE, "alice", 3)
    for _ in range(3):
        last = await single.hit(FIVE_PER_MINUTE, "alice")
    assert decision == last
    assert decision.remaining == 2
    refused = await weighted.hit(FIVE_PER_MINUTE, "alice", 3)  # 2 left: all or nothing
    assert (refused.allowed, refused.retry_after) == (False, 12)
    assert (await weighted.hit(FIVE_PER_MINUTE, "alice", 2)).remaining == 0
    clock.advance(24)
    assert (await weighted.hit(FIVE_PER_MINUTE, "alice", 2)).allowed


def test_batch_cost_is_one_plus_a_tenth_of_its_operations_rounded_up() -> None:
    from domain.use_cases.task_batch import requests_counted

    assert [requests_counted(n) for n in (1, 9, 10, 11, 20, 99, 100)] == [2, 2, 2, 3, 3, 11, 11]
