"""The worker loop over the in-memory schedule and a fake clock: due jobs run, leases keep
workers apart and are taken over once expired, a stop request ends a run between steps, a
commit's wake-up runs the jobs that wake on events, and jobs take turns."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import REGISTRY

from adapters.memory.events import MemoryFeedSignal
from adapters.memory.jobs import MemoryJobSchedule
from app.worker import RETRY_AFTER_FAILURE, Worker
from domain.jobs import Job
from domain.ports.worker import JobState

LEASE = timedelta(seconds=30)
_names = itertools.count()


class FakeClock:
    def __init__(self) -> None:
        self.current = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.current

    def advance(self, **delta: float) -> None:
        self.current += timedelta(**delta)


class Batches:
    """A step that hands out the given batch sizes, then 0; `during` runs inside each call."""

    def __init__(self, *sizes: int, during: Callable[[int], None] | None = None) -> None:
        self.sizes = list(sizes)
        self.calls = 0
        self.during = during

    async def __call__(self) -> int:
        self.calls += 1
        if self.during is not None:
            self.during(self.calls)
        return self.sizes.pop(0) if self.sizes else 0


def job_name() -> str:
    """A name of its own per test: the Prometheus registry is process-wide."""
    return f"test_job_{next(_names)}"


def make_worker(
    schedule: MemoryJobSchedule, clock: FakeClock, *jobs: Job, holder: str = "w1"
) -> Worker:
    return Worker(jobs, schedule, clock, holder=holder, poll_seconds=0.01, lease=LEASE)


def runs(job: str, outcome: str) -> float:
    value = REGISTRY.get_sample_value(
        "taskhub_worker_job_runs_total", {"worker_job": job, "outcome": outcome}
    )
    return value or 0.0


def items(job: str) -> float:
    return REGISTRY.get_sample_value("taskhub_worker_job_items_total", {"worker_job": job}) or 0.0


def last_success(job: str) -> float | None:
    return REGISTRY.get_sample_value(
        "taskhub_worker_job_last_success_timestamp_seconds", {"worker_job": job}
    )


async def test_a_due_job_runs_its_steps_until_one_finds_nothing() -> None:
    clock, schedule = FakeClock(), MemoryJobSchedule()
    step = Batches(3, 2)
    name = job_name()
    worker = make_worker(schedule, clock, Job(name, timedelta(hours=1), step))

    await worker.tick()

    assert step.calls == 3
    assert schedule.rows[name] == JobState(
        name=name,
        next_run_at=clock.now() + timedelta(hours=1),
        leased_by=None,
        leased_until=None,
        last_success_at=clock.now(),
    )
    assert runs(name, "success") == 1
    assert items(name) == 5
    assert last_success(name) == clock.now().timestamp()
    assert REGISTRY.get_sample_value(
        "taskhub_worker_job_interval_seconds", {"worker_job": name}
    ) == pytest.approx(3600)


async def test_a_job_runs_again_only_once_its_interval_is_over() -> None:
    clock, schedule = FakeClock(), MemoryJobSchedule()
    step = Batches()
    worker = make_worker(schedule, clock, Job(job_name(), timedelta(minutes=10), step))

    await worker.tick()
    clock.advance(minutes=9, seconds=59)
    await worker.tick()
    assert step.calls == 1
    clock.advance(seconds=1)
    await worker.tick()
    assert step.calls == 2


async def test_of_two_workers_ticking_at_once_one_runs_the_job() -> None:
    clock, schedule = FakeClock(), MemoryJobSchedule()
    step = Batches(1, 1, 1)
    name = job_name()
    job = Job(name, timedelta(hours=1), step)
    first = make_worker(schedule, clock, job, holder="w1")
    second = make_worker(schedule, clock, job, holder="w2")

    await asyncio.gather(first.tick(), second.tick())

    assert step.calls == 4  # three batches and the empty one, by one worker
    assert runs(name, "success") == 1


async def test_a_held_lease_keeps_others_off_until_it_expires_then_it_is_taken_over() -> None:
    clock, schedule = FakeClock(), MemoryJobSchedule()
    name = job_name()
    step = Batches(1)
    await schedule.register([name], clock.now())
    # A worker that died holding the lease.
    assert await schedule.claim(name, "dead", clock.now(), clock.now() + LEASE)
    worker = make_worker(schedule, clock, Job(name, timedelta(hours=1), step))

    await worker.tick()
    assert step.calls == 0
    clock.advance(seconds=LEASE.total_seconds())
    await worker.tick()

    assert step.calls == 2
    assert schedule.rows[name].last_success_at == clock.now()
    # The dead holder's late release changes nothing.
    await schedule.release(name, "dead", next_run_at=clock.now(), succeeded_at=None)
    assert schedule.rows[name].next_run_at == clock.now() + timedelta(hours=1)


async def test_a_worker_whose_lease_was_taken_over_stops_at_its_next_step() -> None:
    clock, schedule = FakeClock(), MemoryJobSchedule()
    name = job_name()

    def stalls_then_loses_the_lease(call: int) -> None:
        if call == 1:  # this step outlasts the lease; another worker takes the job over
            clock.advance(seconds=LEASE.total_seconds() + 1)
            schedule.rows[name] = JobState(
                name=name,
                next_run_at=clock.now(),
                leased_by="w2",
                leased_until=clock.now() + LEASE,
            )

    step = Batches(5, 5, during=stalls_then_loses_the_lease)
    worker = make_worker(schedule, clock, Job(name, timedelta(hours=1), step))

    await worker.tick()

    assert step.calls == 1
    assert runs(name, "lease_lost") == 1
    assert schedule.rows[name].leased_by == "w2"  # untouched by the worker that lost it


async def test_a_stop_request_ends_the_run_between_steps_and_frees_the_job_at_once() -> None:
    clock, schedule = FakeClock(), MemoryJobSchedule()
    name = job_name()
    worker: Worker

    def stop_during_the_second_step(call: int) -> None:
        if call == 2:
            worker.stop()

    step = Batches(1, 1, 1, during=stop_during_the_second_step)
    worker = make_worker(schedule, clock, Job(name, timedelta(hours=1), step))

    await worker.tick()

    assert step.calls == 2  # the step in progress finished; no further one began
    assert runs(name, "interrupted") == 1
    assert items(name) == 2
    row = schedule.rows[name]
    assert (row.leased_by, row.next_run_at, row.last_success_at) == (None, clock.now(), None)


async def test_run_returns_after_a_stop_request() -> None:
    clock, schedule = FakeClock(), MemoryJobSchedule()
    worker: Worker

    def stop(call: int) -> None:
        if call == 1:
            worker.stop()

    step = Batches(1, during=stop)
    worker = make_worker(schedule, clock, Job(job_name(), timedelta(hours=1), step))

    await asyncio.wait_for(worker.run(), timeout=5)

    assert worker.stopping
    assert step.calls == 1


async def test_a_failing_step_is_counted_and_retried_soon_without_a_success() -> None:
    clock, schedule = FakeClock(), MemoryJobSchedule()
    name = job_name()

    async def broken() -> int:
        raise RuntimeError("boom")

    worker = make_worker(schedule, clock, Job(name, timedelta(hours=1), broken))

    await worker.tick()

    assert runs(name, "failed") == 1
    assert runs(name, "success") == 0
    row = schedule.rows[name]
    assert row.leased_by is None
    assert row.last_success_at is None
    assert row.next_run_at == clock.now() + RETRY_AFTER_FAILURE


async def test_a_failure_of_the_schedule_does_not_end_the_loop() -> None:
    clock = FakeClock()

    class FlakySchedule(MemoryJobSchedule):
        def __init__(self) -> None:
            super().__init__()
            self.failures = 2

        async def states(self) -> list[JobState]:
            if self.failures:
                self.failures -= 1
                raise ConnectionError("database down")
            return await super().states()

    schedule = FlakySchedule()
    worker: Worker

    def stop(call: int) -> None:
        if call == 1:
            worker.stop()

    step = Batches(during=stop)
    worker = make_worker(schedule, clock, Job(job_name(), timedelta(hours=1), step))

    await asyncio.wait_for(worker.run(), timeout=5)

    assert step.calls == 1  # ran once the schedule answered again


async def test_the_gauge_shows_another_workers_success_from_the_schedule() -> None:
    clock, schedule = FakeClock(), MemoryJobSchedule()
    name = job_name()
    earlier = clock.now() - timedelta(minutes=5)
    schedule.rows[name] = JobState(
        name=name, next_run_at=clock.now() + timedelta(hours=1), last_success_at=earlier
    )
    worker = make_worker(schedule, clock, Job(name, timedelta(hours=1), Batches()))

    await worker.tick()

    assert last_success(name) == earlier.timestamp()


async def test_a_job_without_a_lease_runs_on_every_worker_at_its_interval() -> None:
    clock, schedule = FakeClock(), MemoryJobSchedule()
    name = job_name()
    step = Batches()
    job = Job(name, timedelta(seconds=10), step, exclusive=False)
    first = make_worker(schedule, clock, job, holder="w1")
    second = make_worker(schedule, clock, job, holder="w2")

    await first.tick()
    await second.tick()
    await first.tick()  # not due again on this worker yet
    assert step.calls == 2
    assert schedule.rows[name].leased_by is None
    assert schedule.rows[name].last_success_at == clock.now()
    clock.advance(seconds=10)
    await first.tick()
    assert step.calls == 3


def test_liveness_follows_the_loops_last_move() -> None:
    now = [1000.0]
    worker = Worker(
        [],
        MemoryJobSchedule(),
        FakeClock(),
        holder="w1",
        poll_seconds=5,
        lease=LEASE,
        monotonic=lambda: now[0],
    )
    assert worker.is_alive()
    now[0] += 60
    assert worker.is_alive()
    now[0] += 1
    assert not worker.is_alive()


def test_job_names_must_be_unique() -> None:
    job = Job("same", timedelta(seconds=1), Batches())
    with pytest.raises(ValueError, match="unique"):
        make_worker(MemoryJobSchedule(), FakeClock(), job, job)


# --- wake-ups and turns --------------------------------------------------------------------------


class Calls:
    """A step that writes its name into a shared log and hands out the given batch sizes, then
    0; `during` runs inside each call; `called` is set at each call."""

    def __init__(
        self, log: list[str], label: str, *sizes: int, during: Callable[[], None] | None = None
    ) -> None:
        self.log, self.label, self.sizes, self.during = log, label, list(sizes), during
        self.called = asyncio.Event()

    async def __call__(self) -> int:
        self.log.append(self.label)
        self.called.set()
        if self.during is not None:
            self.during()
        return self.sizes.pop(0) if self.sizes else 0


async def next_call(step: Calls) -> None:
    """Wait for the step's next call (the guard only keeps a broken loop from hanging the test:
    the poll interval is an hour, so only a wake-up can bring the call)."""
    step.called.clear()
    await asyncio.wait_for(step.called.wait(), timeout=30)


async def test_a_commit_wakes_the_loop_long_before_the_poll() -> None:
    clock, schedule, signal = FakeClock(), MemoryJobSchedule(), MemoryFeedSignal()
    log: list[str] = []
    woken = Calls(log, "webhooks")
    periodic = Calls(log, "purge")
    worker = Worker(
        [
            Job(job_name(), timedelta(hours=1), woken, wake_on_events=True),
            Job(job_name(), timedelta(hours=1), periodic),
        ],
        schedule,
        clock,
        holder="w1",
        poll_seconds=3600,
        lease=LEASE,
        wake=signal,
    )
    running = asyncio.create_task(worker.run())
    await next_call(periodic)  # the first tick ran both jobs; both are due in an hour

    waiting = next_call(woken)
    signal.notify()  # a commit that wrote events
    await waiting

    worker.stop()
    await asyncio.wait_for(running, timeout=30)
    assert log == ["webhooks", "purge", "webhooks"]  # the clock never moved: only woken jobs


async def test_a_commit_during_a_tick_wakes_the_next_one_at_once() -> None:
    clock, schedule, signal = FakeClock(), MemoryJobSchedule(), MemoryFeedSignal()
    log: list[str] = []
    step = Calls(log, "webhooks", during=lambda: None if log[1:] else signal.notify())
    worker = Worker(
        [Job(job_name(), timedelta(hours=1), step, exclusive=False, wake_on_events=True)],
        schedule,
        clock,
        holder="w1",
        poll_seconds=3600,
        lease=LEASE,
        wake=signal,
    )
    running = asyncio.create_task(worker.run())
    await next_call(step)  # the first call notifies while the tick is under way
    await next_call(step)  # so the loop does not wait for the poll to run again

    worker.stop()
    await asyncio.wait_for(running, timeout=30)
    assert log == ["webhooks", "webhooks"]


async def test_a_stream_of_commits_wakes_the_loop_once_per_spacing_not_once_per_commit() -> None:
    clock, schedule, signal = FakeClock(), MemoryJobSchedule(), MemoryFeedSignal()
    log: list[str] = []
    step = Calls(log, "webhooks", during=signal.notify)  # every call sees another commit
    worker = Worker(
        [Job(job_name(), timedelta(hours=1), step, exclusive=False, wake_on_events=True)],
        schedule,
        clock,
        holder="w1",
        poll_seconds=3600,
        lease=LEASE,
        wake=signal,
        wake_spacing=3600,
    )
    running = asyncio.create_task(worker.run())
    await next_call(step)
    await asyncio.sleep(0.2)  # without the spacing the loop would spin here, tick after tick
    worker.stop()  # and a stop request ends the spacing's wait at once
    await asyncio.wait_for(running, timeout=30)
    assert log == ["webhooks"]


async def test_a_wake_up_runs_a_leased_job_early_but_never_under_another_workers_lease() -> None:
    clock, schedule = FakeClock(), MemoryJobSchedule()
    log: list[str] = []
    name = job_name()
    worker = make_worker(
        schedule, clock, Job(name, timedelta(hours=1), Calls(log, "fan-out"), wake_on_events=True)
    )
    await worker.tick()
    await worker.tick()  # not due
    assert log == ["fan-out"]

    await worker.tick(woken=True)
    assert log == ["fan-out", "fan-out"]
    assert schedule.rows[name].next_run_at == clock.now() + timedelta(hours=1)

    assert await schedule.claim(name, "w2", clock.now(), clock.now() + LEASE, early=True)
    await worker.tick(woken=True)
    assert log == ["fan-out", "fan-out"]


async def test_wake_ups_leave_other_jobs_and_a_failed_job_to_their_schedule() -> None:
    clock, schedule = FakeClock(), MemoryJobSchedule()
    log: list[str] = []
    failing, periodic = job_name(), job_name()

    async def broken() -> int:
        log.append("broken")
        raise RuntimeError("boom")

    worker = make_worker(
        schedule,
        clock,
        Job(failing, timedelta(seconds=5), broken, exclusive=False, wake_on_events=True),
        Job(periodic, timedelta(hours=1), Calls(log, "purge")),
    )
    await worker.tick()
    assert log == ["broken", "purge"]

    await worker.tick(woken=True)  # the failed job waits for its retry; the purge is not woken
    assert log == ["broken", "purge"]
    clock.advance(seconds=5)
    await worker.tick(woken=True)
    assert log == ["broken", "purge", "broken"]


async def test_a_job_with_work_left_gives_way_to_the_other_jobs_turn_by_turn() -> None:
    clock, schedule = FakeClock(), MemoryJobSchedule()
    log: list[str] = []
    fan_out, deliveries = job_name(), job_name()
    leases: list[str | None] = []

    def note_the_fan_outs_lease() -> None:
        leases.append(schedule.rows[fan_out].leased_by)

    worker = Worker(
        [
            # Events keep arriving: each of the fan-out's first five steps finds some.
            Job(fan_out, timedelta(hours=1), Calls(log, "F", 1, 1, 1, 1, 1), wake_on_events=True),
            Job(
                deliveries,
                timedelta(hours=1),
                Calls(log, "D", 0, 0, 1, 1, 1, during=note_the_fan_outs_lease),
                exclusive=False,
                wake_on_events=True,
            ),
        ],
        schedule,
        clock,
        holder="w1",
        poll_seconds=0.01,
        lease=LEASE,
        steps_per_turn=2,
    )

    # One tick: the deliveries run between the fan-out's turns, though their own interval is an
    # hour off, because the fan-out's work wakes them; then they take turns with it.
    await worker.tick()

    turns = ["F", "F", "D"], ["F", "F", "D"], ["F", "F", "D", "D"], ["F", "D", "D"], ["F", "D"]
    assert log == [label for turn in turns for label in turn]
    # While the fan-out gave way its worker kept the lease (no other worker could cut in), and
    # gave it back once the fan-out had nothing left.
    assert leases[:3] == ["w1", "w1", None]
    assert runs(fan_out, "yielded") == 2
    assert runs(deliveries, "yielded") == 1
    assert schedule.rows[fan_out].last_success_at == clock.now()


async def test_a_stop_request_between_two_turns_hands_the_kept_lease_back() -> None:
    clock, schedule = FakeClock(), MemoryJobSchedule()
    log: list[str] = []
    busy, other = job_name(), job_name()
    worker: Worker
    worker = Worker(
        [
            Job(busy, timedelta(hours=1), Calls(log, "busy", 1, 1, 1)),
            Job(other, timedelta(hours=1), Calls(log, "other", during=lambda: worker.stop())),
        ],
        schedule,
        clock,
        holder="w1",
        poll_seconds=0.01,
        lease=LEASE,
        steps_per_turn=1,
    )

    await worker.tick()

    assert log == ["busy", "other"]
    row = schedule.rows[busy]
    assert (row.leased_by, row.next_run_at, row.last_success_at) == (None, clock.now(), None)


def test_a_turn_needs_a_step() -> None:
    with pytest.raises(ValueError, match="step"):
        Worker(
            [],
            MemoryJobSchedule(),
            FakeClock(),
            holder="w",
            poll_seconds=1,
            lease=LEASE,
            steps_per_turn=0,
        )
