"""In-memory idempotency store (single process; the embedded default and unit tests).

Every method runs to completion without awaiting, so under asyncio each one is atomic: two
concurrent `begin` calls for one key can never both claim it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from domain.ports import IdempotencyRecord, StoredResponse

_SWEEP_INTERVAL_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class _Entry:
    record: IdempotencyRecord
    expires_at: float


class MemoryIdempotencyStore:
    """Records expire `ttl_seconds` after they were claimed or completed, measured with
    `monotonic` (injectable for tests)."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self._entries: dict[str, _Entry] = {}
        self._next_sweep = monotonic() + _SWEEP_INTERVAL_SECONDS

    def __len__(self) -> int:
        """Records held, expired ones included until a sweep removes them."""
        return len(self._entries)

    def _live(self, key: str, now: float) -> _Entry | None:
        entry = self._entries.get(key)
        if entry is not None and entry.expires_at <= now:
            del self._entries[key]
            return None
        return entry

    def _sweep(self, now: float) -> None:
        if now < self._next_sweep:
            return
        self._next_sweep = now + _SWEEP_INTERVAL_SECONDS
        for key in [k for k, e in self._entries.items() if e.expires_at <= now]:
            del self._entries[key]

    async def begin(self, key: str, fingerprint: str, ttl_seconds: int) -> IdempotencyRecord | None:
        now = self._monotonic()
        self._sweep(now)
        entry = self._live(key, now)
        if entry is not None:
            return entry.record
        self._entries[key] = _Entry(IdempotencyRecord(fingerprint, None), now + ttl_seconds)
        return None

    async def complete(
        self, key: str, fingerprint: str, response: StoredResponse, ttl_seconds: int
    ) -> None:
        now = self._monotonic()
        self._entries[key] = _Entry(IdempotencyRecord(fingerprint, response), now + ttl_seconds)

    async def release(self, key: str) -> None:
        """Forget an in-flight claim; a completed record stays for replay."""
        entry = self._live(key, self._monotonic())
        if entry is not None and entry.record.response is None:
            del self._entries[key]
