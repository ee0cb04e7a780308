"""Rate-limit policies ("600/minute") and the GCRA arithmetic that every RateLimiter adapter shares.

The algorithm is GCRA (generic cell rate algorithm), kept in whole microseconds so that Python and
the Redis Lua script compute identical answers:

- each request costs `interval = ceil(window / limit)`; the bucket holds `capacity = limit *
  interval` (the policy's window, rounded up by less than `limit` microseconds);
- per subject we keep one number, the theoretical arrival time (TAT): the moment the bucket will
  be empty again. A missing or past TAT counts as `now`;
- a request is admitted when `max(tat, now) + interval - now <= capacity`, and then the TAT moves
  to `max(tat, now) + interval`; a refused request changes nothing.
- a request that counts as `cost` requests (a batch) is the same step with `cost * interval`:
  admitted only when all of it fits, and then it moves the TAT by all of it.

So a fresh subject may send `limit` requests at once, then one per `interval`: over any span of
`t` microseconds at most `limit + floor(t / interval)` requests pass.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from domain.ports import RateLimitDecision, RateLimitPolicy

MICROSECONDS = 1_000_000

WINDOWS = {"second": 1, "minute": 60, "hour": 3600}

_POLICY_TEXT = re.compile(r"\s*([0-9]+)\s*/\s*([a-z]+)\s*", re.ASCII | re.IGNORECASE)


def parse_policy(name: str, text: str) -> RateLimitPolicy:
    """`"600/minute"` -> RateLimitPolicy(name, 600, 60); ValueError naming the format otherwise."""
    match = _POLICY_TEXT.fullmatch(text)
    unit = match.group(2).lower() if match else ""
    if match is None or unit not in WINDOWS or int(match.group(1)) < 1:
        raise ValueError(
            f"rate limit {name!r}: {text!r} is not N/second, N/minute or N/hour "
            "with N a whole number >= 1 (for example '600/minute')"
        )
    return RateLimitPolicy(name=name, limit=int(match.group(1)), window_seconds=WINDOWS[unit])


@dataclass(frozen=True, slots=True)
class GcraParameters:
    interval_us: int  # what one request costs
    capacity_us: int  # how far ahead of now the TAT may run: limit * interval


def gcra_parameters(policy: RateLimitPolicy) -> GcraParameters:
    interval = -(-policy.window_seconds * MICROSECONDS // policy.limit)
    return GcraParameters(interval_us=interval, capacity_us=interval * policy.limit)


@dataclass(frozen=True, slots=True)
class GcraOutcome:
    """One GCRA step, in microseconds; `tat_us` is the TAT to keep (unchanged when refused)."""

    allowed: bool
    tat_us: int
    remaining: int
    reset_after_us: int
    retry_after_us: int

    def decision(self, limit: int) -> RateLimitDecision:
        """Round to the whole seconds the headers carry (up, so a client never retries early)."""
        return RateLimitDecision(
            allowed=self.allowed,
            limit=limit,
            remaining=self.remaining,
            reset_after=_ceil_seconds(self.reset_after_us),
            retry_after=0 if self.allowed else max(1, _ceil_seconds(self.retry_after_us)),
        )


def gcra_hit(
    params: GcraParameters, stored_tat_us: int | None, now_us: int, cost: int = 1
) -> GcraOutcome:
    """Count a request arriving at `now_us` as `cost` requests against the stored TAT (None:
    none stored)."""
    step = params.interval_us * cost
    tat = now_us if stored_tat_us is None else max(stored_tat_us, now_us)
    ahead = tat + step - now_us
    if ahead > params.capacity_us:
        return GcraOutcome(
            allowed=False,
            tat_us=tat,
            remaining=0,
            reset_after_us=tat - now_us,
            retry_after_us=ahead - params.capacity_us,
        )
    return GcraOutcome(
        allowed=True,
        tat_us=tat + step,
        remaining=(params.capacity_us - ahead) // params.interval_us,
        reset_after_us=ahead,
        retry_after_us=0,
    )


def _ceil_seconds(microseconds: int) -> int:
    return -(-microseconds // MICROSECONDS)
