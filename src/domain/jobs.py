"""Periodic jobs of the worker: a name, how often it runs, and a step that does one bounded batch.

A step claims at most a batch of work, does it in one short transaction and says how many items
it handled; the worker repeats it until it handles none. Nothing is held across steps, so a run
may stop (a signal, a lost lease, a crash) between any two of them and another worker carries on.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

Step = Callable[[], Awaitable[int]]


@dataclass(frozen=True, slots=True)
class Job:
    """`exclusive`: one runner at a time across every worker, under a lease (periodic clean-ups).
    Not exclusive: every worker runs it on its own schedule, and the step's claim alone (rows
    locked with SKIP LOCKED, say) keeps two workers off the same item (queues such as
    deliveries).

    `wake_on_events`: besides its interval, the job is due at once when a commit writes events
    (the worker's wake-up signal), for jobs whose work those events make (the webhooks')."""

    name: str
    interval: timedelta
    step: Step
    exclusive: bool = True
    wake_on_events: bool = False

    def __post_init__(self) -> None:
        if not self.name or self.interval <= timedelta(0):
            raise ValueError("a job needs a name and a positive interval")
