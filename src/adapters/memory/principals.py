"""In-process principal cache (one process: the embedded default and unit tests)."""

from __future__ import annotations

import time
from collections.abc import Callable

from domain.auth import Principal


class MemoryPrincipalCache:
    """Entries expire after their TTL; at most `max_entries` are kept (oldest dropped first)."""

    def __init__(
        self, max_entries: int = 10_000, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self._entries: dict[str, tuple[float, Principal]] = {}
        self._by_credential: dict[str, set[str]] = {}
        self._max = max_entries
        self._now = monotonic

    async def get(self, key: str) -> Principal | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, principal = entry
        if expires <= self._now():
            self._drop(key)
            return None
        return principal

    async def put(self, key: str, principal: Principal, ttl_seconds: int) -> None:
        if len(self._entries) >= self._max and key not in self._entries:
            self._drop(next(iter(self._entries)))
        self._entries[key] = (self._now() + ttl_seconds, principal)
        self._by_credential.setdefault(principal.credential_id, set()).add(key)

    async def evict(self, credential_id: str) -> None:
        for key in self._by_credential.pop(credential_id, set()):
            self._entries.pop(key, None)

    def _drop(self, key: str) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            keys = self._by_credential.get(entry[1].credential_id)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._by_credential[entry[1].credential_id]

    def __len__(self) -> int:
        return len(self._entries)
