"""In-memory twin of the worker's schedule: one process (the embedded default, unit tests).
Every method runs to its end without awaiting, so a claim is atomic within the event loop."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from domain.ports.worker import JobState


class MemoryJobSchedule:
    def __init__(self) -> None:
        self.rows: dict[str, JobState] = {}

    async def register(self, names: Sequence[str], now: datetime) -> None:
        for name in names:
            self.rows.setdefault(name, JobState(name=name, next_run_at=now))

    async def states(self) -> list[JobState]:
        return [self.rows[name] for name in sorted(self.rows)]

    async def claim(
        self, name: str, holder: str, now: datetime, until: datetime, *, early: bool = False
    ) -> bool:
        row = self.rows.get(name)
        if row is None or (row.next_run_at > now and not early):
            return False
        if row.leased_until is not None and row.leased_until > now:
            return False
        self.rows[name] = replace(row, leased_by=holder, leased_until=until)
        return True

    async def renew(self, name: str, holder: str, until: datetime) -> bool:
        row = self.rows.get(name)
        if row is None or row.leased_by != holder:
            return False
        self.rows[name] = replace(row, leased_until=until)
        return True

    async def release(
        self, name: str, holder: str, *, next_run_at: datetime, succeeded_at: datetime | None
    ) -> None:
        row = self.rows.get(name)
        if row is None or row.leased_by != holder:
            return
        self.rows[name] = replace(
            row,
            leased_by=None,
            leased_until=None,
            next_run_at=next_run_at,
            last_success_at=succeeded_at or row.last_success_at,
        )

    async def record_success(self, name: str, at: datetime) -> None:
        row = self.rows.get(name)
        if row is not None and (row.last_success_at is None or row.last_success_at < at):
            self.rows[name] = replace(row, last_success_at=at)
