"""In-process ConcurrencyLimiter: slots counted per subject in this process only."""

from __future__ import annotations


class MemoryConcurrencyLimiter:
    """Never awaits, so on one event loop each acquire and release is atomic."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._running: dict[str, int] = {}

    async def acquire(self, subject: str) -> str | None:
        running = self._running.get(subject, 0)
        if running >= self.limit:
            return None
        self._running[subject] = running + 1
        return subject

    async def release(self, subject: str, ticket: str) -> None:  # noqa: ARG002
        running = self._running.get(subject, 0) - 1
        if running > 0:
            self._running[subject] = running
        else:
            self._running.pop(subject, None)
