"""In-process RateLimiter: GCRA (domain.rate_limits), the same arithmetic as the Redis adapter.

Counts for one process only (the embedded default and unit tests). `hit` never awaits, so on one
event loop each decision is atomic. Memory stays bounded: an entry whose TAT has passed is
equivalent to no entry, and such entries are swept whenever the table has doubled since the last
sweep (amortised O(1) per hit).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from domain.ports import RateLimitDecision, RateLimitPolicy
from domain.rate_limits import gcra_hit, gcra_parameters


def monotonic_us() -> int:
    return time.monotonic_ns() // 1000


class MemoryRateLimiter:
    def __init__(self, clock_us: Callable[[], int] = monotonic_us, min_sweep: int = 1024) -> None:
        """`clock_us` returns the current time in whole microseconds (any fixed origin)."""
        self._clock_us = clock_us
        self._tats: dict[tuple[str, str], int] = {}
        self._min_sweep = min_sweep
        self._sweep_at = min_sweep

    def __len__(self) -> int:
        """How many subjects are tracked (expired ones included until the next sweep)."""
        return len(self._tats)

    async def hit(self, policy: RateLimitPolicy, key: str, cost: int = 1) -> RateLimitDecision:
        now = self._clock_us()
        slot = (policy.name, key)
        outcome = gcra_hit(gcra_parameters(policy), self._tats.get(slot), now, cost)
        if outcome.allowed:
            self._tats[slot] = outcome.tat_us
            if len(self._tats) >= self._sweep_at:
                self._sweep(now)
        return outcome.decision(policy.limit)

    def _sweep(self, now_us: int) -> None:
        self._tats = {slot: tat for slot, tat in self._tats.items() if tat > now_us}
        self._sweep_at = max(self._min_sweep, 2 * len(self._tats))
