"""The worker: a loop that runs periodic jobs, shared by any number of worker processes.

Every `poll_seconds` the loop reads the shared schedule (one row per job) and, for each job that
is due, tries to lease it: of all the workers that try at once, one gets it. The holder repeats
the job's step (one bounded batch in one short transaction) until a step finds nothing left,
renewing its lease between steps, then hands the lease back with the job's next due time. A
worker that dies stops renewing; once its lease runs out another worker takes the job over and
finishes what is left. A stop request (SIGTERM) ends the loop between two steps, never inside one.

Jobs that are not exclusive (queues whose step claims its own items) run on every worker at
their interval, without a lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Literal

import structlog

from adapters.http.metrics import (
    WORKER_JOB_INTERVAL,
    WORKER_JOB_ITEMS,
    WORKER_JOB_LAST_SUCCESS,
    WORKER_JOB_RUNS,
)
from domain.errors import Unavailable
from domain.jobs import Job
from domain.ports import Clock
from domain.ports.worker import JobSchedule, JobState

log = structlog.get_logger("taskhub.worker")

Outcome = Literal["success", "failed", "interrupted", "lease_lost"]

# After a failed run the job is due again this soon (or at its interval, when that is shorter).
RETRY_AFTER_FAILURE = timedelta(seconds=60)
# The loop counts as alive while it has moved within this time (or three polls, when longer).
LIVENESS_WINDOW_SECONDS = 60.0


def worker_identity() -> str:
    """A name for this worker process, unique across replicas: host, pid and a random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _due(state: JobState, now: datetime) -> bool:
    lease_free = state.leased_until is None or state.leased_until <= now
    return state.next_run_at <= now and lease_free


class Worker:
    def __init__(
        self,
        jobs: Sequence[Job],
        schedule: JobSchedule,
        clock: Clock,
        *,
        holder: str,
        poll_seconds: float,
        lease: timedelta,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        names = [job.name for job in jobs]
        if len(set(names)) != len(names):
            raise ValueError("job names must be unique")
        if lease <= timedelta(0) or poll_seconds <= 0:
            raise ValueError("the lease and the poll interval must be positive")
        self._jobs = list(jobs)
        self._schedule = schedule
        self._clock = clock
        self.holder = holder
        self._poll_seconds = poll_seconds
        self._lease = lease
        self._monotonic = monotonic
        self._stopping = asyncio.Event()
        self._registered = False
        self._next_shared_run: dict[str, datetime] = {}
        self._last_beat = monotonic()
        for job in self._jobs:
            WORKER_JOB_INTERVAL.labels(job.name).set(job.interval.total_seconds())

    @property
    def jobs(self) -> list[Job]:
        return list(self._jobs)

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def stop(self) -> None:
        """Ask the loop to end after the step in progress (safe from a signal handler)."""
        self._stopping.set()

    def is_alive(self) -> bool:
        """Whether the loop has moved recently (for a liveness probe)."""
        window = max(LIVENESS_WINDOW_SECONDS, 3 * self._poll_seconds)
        return self._monotonic() - self._last_beat <= window

    async def run(self) -> None:
        """Tick every poll interval until stopped. A failing tick (database down) is logged and
        the next one tries again."""
        log.info("worker started", holder=self.holder, jobs=[job.name for job in self._jobs])
        while not self._stopping.is_set():
            try:
                await self.tick()
            except Unavailable as exc:
                log.warning("worker tick failed: a dependency is unavailable", error=exc.detail)
            except Exception:
                log.exception("worker tick failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._poll_seconds)
        log.info("worker stopped", holder=self.holder)

    async def tick(self) -> None:
        """One pass: read the schedule (and show every job's last success), then run each job
        that is due, one after the other."""
        self._last_beat = self._monotonic()
        if not self._registered:
            await self._schedule.register([job.name for job in self._jobs], self._clock.now())
            self._registered = True
        states = {state.name: state for state in await self._schedule.states()}
        for known in states.values():
            if known.last_success_at is not None:
                WORKER_JOB_LAST_SUCCESS.labels(known.name).set(known.last_success_at.timestamp())
        for job in self._jobs:
            if self._stopping.is_set():
                return
            state = states.get(job.name)
            if state is None:
                self._registered = False  # the row went away: register it again next tick
                continue
            if job.exclusive:
                if _due(state, self._clock.now()):
                    await self._run_leased(job)
            elif self._next_shared_run.get(job.name, state.next_run_at) <= self._clock.now():
                await self._run_shared(job)

    async def _run_leased(self, job: Job) -> None:
        now = self._clock.now()
        if not await self._schedule.claim(job.name, self.holder, now, now + self._lease):
            return  # another worker got it first
        started = self._monotonic()
        outcome: Outcome = "failed"
        items = 0
        try:
            outcome, items = await self._steps(job, leased=True)
            now = self._clock.now()
            if outcome == "success":
                await self._schedule.release(
                    job.name, self.holder, next_run_at=now + job.interval, succeeded_at=now
                )
                WORKER_JOB_LAST_SUCCESS.labels(job.name).set(now.timestamp())
            elif outcome == "failed":
                retry = now + min(job.interval, RETRY_AFTER_FAILURE)
                await self._schedule.release(
                    job.name, self.holder, next_run_at=retry, succeeded_at=None
                )
            elif outcome == "interrupted":
                # Due at once: another worker carries on where this one stopped.
                await self._schedule.release(
                    job.name, self.holder, next_run_at=now, succeeded_at=None
                )
        finally:
            self._report(job, outcome, items, started)

    async def _run_shared(self, job: Job) -> None:
        started = self._monotonic()
        outcome, items = await self._steps(job, leased=False)
        now = self._clock.now()
        if outcome == "success":
            self._next_shared_run[job.name] = now + job.interval
            await self._schedule.record_success(job.name, now)
            WORKER_JOB_LAST_SUCCESS.labels(job.name).set(now.timestamp())
        elif outcome == "failed":
            self._next_shared_run[job.name] = now + min(job.interval, RETRY_AFTER_FAILURE)
        self._report(job, outcome, items, started)

    async def _steps(self, job: Job, *, leased: bool) -> tuple[Outcome, int]:
        """Repeat the job's step until it handles nothing, the worker is asked to stop, the
        lease is lost or a step fails. Returns the outcome and the items handled."""
        items = 0
        while not self._stopping.is_set():
            try:
                handled = await job.step()
                self._last_beat = self._monotonic()
                if handled <= 0:
                    return "success", items
                items += handled
                WORKER_JOB_ITEMS.labels(job.name).inc(handled)
                if leased:
                    until = self._clock.now() + self._lease
                    if not await self._schedule.renew(job.name, self.holder, until):
                        return "lease_lost", items
            except Unavailable as exc:
                log.warning("job step failed", job=job.name, error=exc.detail)
                return "failed", items
            except Exception:
                log.exception("job step failed", job=job.name)
                return "failed", items
        return "interrupted", items

    def _report(self, job: Job, outcome: Outcome, items: int, started: float) -> None:
        WORKER_JOB_RUNS.labels(job.name, outcome).inc()
        seconds = round(self._monotonic() - started, 3)
        if outcome == "success" and items == 0:
            log.debug("job run", job=job.name, outcome=outcome, items=items, seconds=seconds)
        else:
            log.info("job run", job=job.name, outcome=outcome, items=items, seconds=seconds)
