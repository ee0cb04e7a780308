"""The worker: a loop that runs periodic jobs, shared by any number of worker processes.

Every `poll_seconds` the loop reads the shared schedule (one row per job) and, for each job that
is due, tries to lease it: of all the workers that try at once, one gets it. The holder repeats
the job's step (one bounded batch in one short transaction), renewing its lease between steps,
until a step finds nothing left, then hands the lease back with the job's next due time. A turn
is at most `STEPS_PER_TURN` steps: a job with work left keeps its lease while the other due jobs
take their turns, and goes on when the loop passes over the jobs again. A worker that dies stops
renewing; once its lease runs out another worker takes the job over and finishes what is left. A
stop request (SIGTERM) ends the loop between two steps, never inside one.

Jobs that are not exclusive (queues whose step claims its own items) run on every worker at
their interval, without a lease. Jobs that wake on events (the webhooks') also run as soon as a
commit writes events: the change streams' wake-up signal (`FeedSignal`, over Redis pub/sub across
processes) ends the loop's wait early; the poll stays the fallback for a lost wake-up.
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
from domain.ports.events import FeedSignal
from domain.ports.worker import JobSchedule, JobState

log = structlog.get_logger("taskhub.worker")

# "yielded": the job's turn ended with work left; it goes on in the next pass, after the others
# (an exclusive job keeps its lease meanwhile).
Outcome = Literal["success", "failed", "interrupted", "lease_lost", "yielded"]

# After a failed run the job is due again this soon (or at its interval, when that is shorter).
RETRY_AFTER_FAILURE = timedelta(seconds=60)
# A job's turn: at most this many steps, then the other due jobs have theirs before it goes on.
STEPS_PER_TURN = 4
# Woken ticks start at least this far apart (seconds): a burst of commits costs a few ticks a
# second, not one per commit (each tick reads the schedule and leases jobs).
WAKE_SPACING_SECONDS = 0.25
# The loop counts as alive while it has moved within this time (or three polls, when longer).
LIVENESS_WINDOW_SECONDS = 60.0


def worker_identity() -> str:
    """A name for this worker process, unique across replicas: host, pid and a random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _free(state: JobState, now: datetime) -> bool:
    return state.leased_until is None or state.leased_until <= now


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
        wake: FeedSignal | None = None,
        steps_per_turn: int = STEPS_PER_TURN,
        wake_spacing: float = WAKE_SPACING_SECONDS,
    ) -> None:
        names = [job.name for job in jobs]
        if len(set(names)) != len(names):
            raise ValueError("job names must be unique")
        if lease <= timedelta(0) or poll_seconds <= 0:
            raise ValueError("the lease and the poll interval must be positive")
        if steps_per_turn < 1:
            raise ValueError("a turn needs at least one step")
        self._jobs = list(jobs)
        self._schedule = schedule
        self._clock = clock
        self.holder = holder
        self._poll_seconds = poll_seconds
        self._lease = lease
        self._monotonic = monotonic
        self._wake = wake
        self._wake_spacing = wake_spacing
        self._steps_per_turn = steps_per_turn
        self._retry_at: dict[str, datetime] = {}
        self._held: set[str] = set()  # jobs whose lease this worker keeps between two turns
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
        """Tick every poll interval, and at once after a wake-up (a commit that wrote events),
        until stopped. A failing tick (database down) is logged and the next one tries again."""
        log.info("worker started", holder=self.holder, jobs=[job.name for job in self._jobs])
        woken = False
        while not self._stopping.is_set():
            # Taken before the tick: a commit during it wakes the wait below at once.
            ticket = self._wake.ticket() if self._wake is not None else None
            started = time.monotonic()
            try:
                await self.tick(woken=woken)
            except Unavailable as exc:
                log.warning("worker tick failed: a dependency is unavailable", error=exc.detail)
            except Exception:
                log.exception("worker tick failed")
            woken = await self._pause(ticket)
            if woken:
                await self._stop_or_sleep(self._wake_spacing - (time.monotonic() - started))
        log.info("worker stopped", holder=self.holder)

    async def _stop_or_sleep(self, seconds: float) -> None:
        """Sleep `seconds` (if positive) unless a stop request comes first."""
        if seconds > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), seconds)

    async def _pause(self, ticket: object) -> bool:
        """Wait for the poll interval, a stop request or a wake-up since `ticket`; whether a
        wake-up ended it. A lost wake-up only delays the work until the poll."""
        if self._wake is None:
            await self._stop_or_sleep(self._poll_seconds)
            return False
        stop = asyncio.ensure_future(self._stopping.wait())
        wake = asyncio.ensure_future(self._wake.wait(ticket, self._poll_seconds))
        try:
            await asyncio.wait({stop, wake}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            wake.cancel()
            await asyncio.gather(stop, wake, return_exceptions=True)
        return wake.done() and not wake.cancelled() and wake.exception() is None and wake.result()

    async def tick(self, *, woken: bool = False) -> None:
        """Passes over the jobs until one leaves no work behind. A pass reads the schedule (and
        shows every job's last success), then gives each due job one turn, one after the other;
        `woken` makes the jobs that wake on events due in the first pass. A job whose turn ended
        with work left is due again in the next pass, after the others had theirs; and work done
        by a job that wakes on events (the fan-out's new deliveries) wakes them for the next."""
        try:
            while not self._stopping.is_set():
                more, woken = await self._pass(woken)
                if not (more or woken):
                    return
        finally:
            await self._hand_back_held()

    async def _hand_back_held(self) -> None:
        """Leases kept across passes when the tick ends early (a stop request, a failure): due at
        once, so another worker carries on."""
        held, self._held = self._held, set()
        for name in held:
            try:
                await self._schedule.release(
                    name, self.holder, next_run_at=self._clock.now(), succeeded_at=None
                )
            except Exception as exc:  # the lease then runs out on its own
                log.warning("could not hand a lease back", job=name, error=type(exc).__name__)

    async def _pass(self, woken: bool) -> tuple[bool, bool]:
        """One turn for each due job; whether a turn left work behind, and whether a job that
        wakes on events handled anything."""
        self._last_beat = self._monotonic()
        if not self._registered:
            await self._schedule.register([job.name for job in self._jobs], self._clock.now())
            self._registered = True
        states = {state.name: state for state in await self._schedule.states()}
        for known in states.values():
            if known.last_success_at is not None:
                WORKER_JOB_LAST_SUCCESS.labels(known.name).set(known.last_success_at.timestamp())
        more = wake = False
        for job in self._jobs:
            if self._stopping.is_set():
                break
            state = states.get(job.name)
            if state is None:
                self._registered = False  # the row went away: register it again next tick
                continue
            now = self._clock.now()
            # A wake-up runs the job early, except while it waits to retry after a failure here.
            early = woken and job.wake_on_events and self._retry_at.get(job.name, now) <= now
            turn: tuple[Outcome, int] | None = None
            if job.exclusive:
                if job.name in self._held:
                    turn = await self._run_leased(job, early=early, held=True)
                elif _free(state, now) and (early or state.next_run_at <= now):
                    turn = await self._run_leased(job, early=early)
            elif early or self._next_shared_run.get(job.name, state.next_run_at) <= now:
                turn = await self._run_shared(job)
            if turn is not None:
                outcome, handled = turn
                more = more or outcome == "yielded"
                wake = wake or (job.wake_on_events and handled > 0)
        return more, wake

    async def _run_leased(
        self, job: Job, *, early: bool, held: bool = False
    ) -> tuple[Outcome, int] | None:
        """A turn under the job's lease: claimed, or `held` since this worker's previous turn
        (renewed: when it ran out meanwhile and another worker took the job, that one goes on)."""
        now = self._clock.now()
        self._held.discard(job.name)
        if held:
            got = await self._schedule.renew(job.name, self.holder, now + self._lease)
        else:
            got = await self._schedule.claim(
                job.name, self.holder, now, now + self._lease, early=early
            )
        if not got:
            return None  # another worker got it first
        started = self._monotonic()
        outcome: Outcome = "failed"
        items = 0
        try:
            outcome, items = await self._steps(job, leased=True)
            now = self._clock.now()
            self._note(job, outcome, now)
            if outcome == "success":
                await self._schedule.release(
                    job.name, self.holder, next_run_at=now + job.interval, succeeded_at=now
                )
                WORKER_JOB_LAST_SUCCESS.labels(job.name).set(now.timestamp())
            elif outcome == "failed":
                await self._schedule.release(
                    job.name, self.holder, next_run_at=self._retry_at[job.name], succeeded_at=None
                )
            elif outcome == "interrupted":
                # Due at once: another worker carries on where this one stopped.
                await self._schedule.release(
                    job.name, self.holder, next_run_at=now, succeeded_at=None
                )
            elif outcome == "yielded":
                self._held.add(job.name)  # the lease stays: its next turn is this worker's
        finally:
            self._report(job, outcome, items, started)
        return outcome, items

    async def _run_shared(self, job: Job) -> tuple[Outcome, int]:
        started = self._monotonic()
        outcome, items = await self._steps(job, leased=False)
        now = self._clock.now()
        self._note(job, outcome, now)
        if outcome == "success":
            self._next_shared_run[job.name] = now + job.interval
            await self._schedule.record_success(job.name, now)
            WORKER_JOB_LAST_SUCCESS.labels(job.name).set(now.timestamp())
        elif outcome == "failed":
            self._next_shared_run[job.name] = self._retry_at[job.name]
        elif outcome == "yielded":
            self._next_shared_run[job.name] = now
        self._report(job, outcome, items, started)
        return outcome, items

    def _note(self, job: Job, outcome: Outcome, now: datetime) -> None:
        """After a failure the job waits to retry (wake-ups included); any other end clears it."""
        if outcome == "failed":
            self._retry_at[job.name] = now + min(job.interval, RETRY_AFTER_FAILURE)
        else:
            self._retry_at.pop(job.name, None)

    async def _steps(self, job: Job, *, leased: bool) -> tuple[Outcome, int]:
        """Repeat the job's step until it handles nothing, its turn is over (`steps_per_turn`
        steps), the worker is asked to stop, the lease is lost or a step fails. Returns the
        outcome and the items handled."""
        items = 0
        steps = 0
        while not self._stopping.is_set():
            try:
                handled = await job.step()
                self._last_beat = self._monotonic()
                if handled <= 0:
                    return "success", items
                items += handled
                steps += 1
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
            if steps >= self._steps_per_turn:
                return "yielded", items
        return "interrupted", items

    def _report(self, job: Job, outcome: Outcome, items: int, started: float) -> None:
        WORKER_JOB_RUNS.labels(job.name, outcome).inc()
        seconds = round(self._monotonic() - started, 3)
        # Turns that gave way, and runs of jobs woken by every commit, are too many for info.
        routine = outcome == "yielded" or (outcome == "success" and job.wake_on_events)
        if routine or (outcome == "success" and items == 0):
            log.debug("job run", job=job.name, outcome=outcome, items=items, seconds=seconds)
        else:
            log.info("job run", job=job.name, outcome=outcome, items=items, seconds=seconds)
