"""In-process principal cache (one process: the embedded default and unit tests)."""

from __future__ import annotations

import time
from collections.abc import Callable

from domain.auth import Principal

# How long a revoked credential stays refused by `put`: far longer than any request can spend
# between reading the credential and caching it (statement and pool timeouts bound that).
REVOKED_SECONDS = 3600


class MemoryPrincipalCache:
    """Entries expire after their TTL; at most `max_entries` are kept (oldest dropped first).

    `evict` also leaves a tombstone for `revoked_seconds` (at most `max_entries` of them, oldest
    dropped first): a request that read the credential before it was revoked, and caches it
    after, writes nothing."""

    def __init__(
        self,
        max_entries: int = 10_000,
        monotonic: Callable[[], float] = time.monotonic,
        revoked_seconds: float = REVOKED_SECONDS,
    ) -> None:
        self._entries: dict[str, tuple[float, Principal]] = {}
        self._by_credential: dict[str, set[str]] = {}
        self._revoked: dict[str, float] = {}
        self._max = max_entries
        self._now = monotonic
        self._revoked_seconds = revoked_seconds

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
        now = self._now()
        revoked_until = self._revoked.get(principal.credential_id)
        if revoked_until is not None:
            if revoked_until > now:
                return
            del self._revoked[principal.credential_id]
        if len(self._entries) >= self._max and key not in self._entries:
            self._drop(next(iter(self._entries)))
        self._entries[key] = (now + ttl_seconds, principal)
        self._by_credential.setdefault(principal.credential_id, set()).add(key)

    async def evict(self, credential_id: str) -> None:
        self._revoked.pop(credential_id, None)
        if len(self._revoked) >= self._max:
            del self._revoked[next(iter(self._revoked))]
        self._revoked[credential_id] = self._now() + self._revoked_seconds
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

    @property
    def tombstones(self) -> int:
        """How many revoked credentials are remembered (expired ones until next touched)."""
        return len(self._revoked)
