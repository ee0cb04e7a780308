"""The worker's schedule: one row per job, shared by every worker process on every replica."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True, slots=True)
class JobState:
    """When the job is next due, who holds its lease until when, and its last success."""

    name: str
    next_run_at: datetime
    leased_by: str | None = None
    leased_until: datetime | None = None
    last_success_at: datetime | None = None


class JobSchedule(Protocol):
    """Every change is atomic across processes: of several workers claiming one due job at the
    same moment, exactly one gets it."""

    async def register(self, names: Sequence[str], now: datetime) -> None:
        """Give every job in `names` its row, due at `now`; rows that exist are kept as they are."""
        ...

    async def states(self) -> list[JobState]:
        """Every job's row."""
        ...

    async def claim(
        self, name: str, holder: str, now: datetime, until: datetime, *, early: bool = False
    ) -> bool:
        """Lease the job to `holder` until `until` when it is due at `now` (with `early`: due or
        not, for a wake-up that says there is work) and no unexpired lease is held on it; whether
        `holder` got it."""
        ...

    async def renew(self, name: str, holder: str, until: datetime) -> bool:
        """Extend `holder`'s lease to `until`; False when `holder` no longer holds it (it expired
        and another worker took the job over)."""
        ...

    async def release(
        self, name: str, holder: str, *, next_run_at: datetime, succeeded_at: datetime | None
    ) -> None:
        """End `holder`'s lease, set when the job is next due and, after a success, when it last
        succeeded. Nothing changes when `holder` no longer holds the lease."""
        ...

    async def record_success(self, name: str, at: datetime) -> None:
        """Note a success of a job that runs without a lease (never moves the time backwards)."""
        ...
