"""Several task changes in one call: create, update and delete, through the single use cases.

Every operation runs the same `CreateTask` / `UpdateTask` / `DeleteTask` as the single requests
(fields, access policy, cap, versions are theirs). What the batch adds is only how they share
transactions:
- atomic: one unit of work for the whole batch. Each use case runs over `_Joined`, a view of it
  whose `commit()` only writes what the unit holds (so a refused insert fails its own operation)
  and commits nothing; the batch commits once at the end, and the events held meanwhile go out
  after that commit. The first operation that fails rolls everything back (`BatchFailed`).
  Consecutive creates for one project share one step (`CreateTask.execute_many`, one write);
  when that step writes nothing they run one by one, which names the one that fails. A batch
  that is one such step runs it in a unit of work of its own, with nothing around it.
- not atomic: each operation is its own use-case call, with its own transaction; a failure is
  that operation's result and the others go on. A stretch of creates for one project is first
  tried as one write (all of them succeed, as they would one by one); refused, each runs alone.
An operation whose input was already refused by the transport (`Rejected`) fails with its error
when its turn comes, as if its use case had refused it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from types import TracebackType
from typing import Self

from domain.access import Caller, require_scope
from domain.auth import Scope
from domain.errors import DomainError
from domain.events import TaskEvent
from domain.ports import Clock, IdGenerator
from domain.ports.events import EventLog
from domain.ports.projects import MembershipRepository, ProjectRepository, ProjectTasks
from domain.ports.tasks import (
    EventPublisher,
    TaskRepository,
    TaskUnitOfWork,
    TaskUnitOfWorkFactory,
)
from domain.tasks import DEFAULT_MAX_TASKS_PER_OWNER, Task, TaskDraft
from domain.use_cases.tasks import CreateTask, DeleteTask, UpdateTask, shares_one_step

MAX_OPERATIONS = 100
# A batch counts as 1 + ceil(n / OPERATIONS_PER_REQUEST) requests for the rate limit.
OPERATIONS_PER_REQUEST = 10


def requests_counted(operations: int) -> int:
    """How many requests a batch of `operations` counts as for the rate limit."""
    return 1 + -(-operations // OPERATIONS_PER_REQUEST)


@dataclass(frozen=True, slots=True)
class CreateOp:
    draft: TaskDraft


@dataclass(frozen=True, slots=True)
class UpdateOp:
    task_id: str
    changes: Mapping[str, object]
    expected_version: int | None = None


@dataclass(frozen=True, slots=True)
class DeleteOp:
    task_id: str
    expected_version: int | None = None


@dataclass(frozen=True, slots=True)
class Rejected:
    """An operation whose input the transport already refused (e.g. a field of the wrong type)."""

    error: DomainError


type Operation = CreateOp | UpdateOp | DeleteOp | Rejected


class Outcome(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    DELETED = "deleted"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class OperationResult:
    """One operation's result: the task (created or updated), nothing (deleted), or the error."""

    index: int
    outcome: Outcome
    task: Task | None = None
    error: DomainError | None = None


class BatchFailed(Exception):
    """An atomic batch stopped at operation `index` with `error`; nothing was changed."""

    def __init__(self, index: int, error: DomainError) -> None:
        super().__init__(f"operation {index}: {error.detail}")
        self.index = index
        self.error = error


class _Joined:
    """One use case's unit of work inside the batch's: the same transaction and repositories.
    Entering opens nothing; `commit()` writes what the unit holds back (inserts a store keeps
    until commit, whose refusal, e.g. the cap, then fails this operation) but commits nothing;
    leaving does nothing (a failure rolls the whole batch back)."""

    def __init__(self, outer: TaskUnitOfWork) -> None:
        self._outer = outer

    @property
    def tasks(self) -> TaskRepository:
        return self._outer.tasks

    @property
    def projects(self) -> ProjectRepository:
        return self._outer.projects

    @property
    def memberships(self) -> MembershipRepository:
        return self._outer.memberships

    @property
    def events(self) -> EventLog:
        return self._outer.events

    @property
    def project_tasks(self) -> ProjectTasks:
        return self._outer.project_tasks

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    async def commit(self) -> None:
        await self._outer.flush()

    async def rollback(self) -> None:
        raise RuntimeError("an operation of an atomic batch cannot roll back on its own")

    async def flush(self) -> None:
        await self._outer.flush()


class _HeldEvents:
    """Events of an atomic batch, held until its commit (none go out when it rolls back)."""

    def __init__(self) -> None:
        self.events: list[TaskEvent] = []

    async def publish(self, event: TaskEvent) -> None:
        self.events.append(event)


@dataclass(frozen=True, slots=True)
class _Writers:
    create: CreateTask
    update: UpdateTask
    delete: DeleteTask


class RunTaskBatch:
    def __init__(
        self,
        uow_factory: TaskUnitOfWorkFactory,
        clock: Clock,
        ids: IdGenerator,
        events: EventPublisher,
        *,
        max_tasks: int = DEFAULT_MAX_TASKS_PER_OWNER,
    ) -> None:
        self._uow_factory, self._clock, self._ids, self._events = uow_factory, clock, ids, events
        self._max_tasks = max_tasks

    def _writers(self, uow_factory: TaskUnitOfWorkFactory, events: EventPublisher) -> _Writers:
        """The single use cases, over `uow_factory` and publishing to `events`."""
        return _Writers(
            CreateTask(uow_factory, self._clock, self._ids, events, max_tasks=self._max_tasks),
            UpdateTask(uow_factory, self._clock, events, ids=self._ids),
            DeleteTask(uow_factory, self._clock, events, ids=self._ids),
        )

    async def execute(
        self, caller: Caller, operations: Sequence[Operation], *, atomic: bool = True
    ) -> list[OperationResult]:
        """One result per operation, in order. Atomic: all succeed and commit together, or
        `BatchFailed` names the first that failed and nothing is changed. Not atomic: each
        operation succeeds or fails on its own (its result says which)."""
        require_scope(caller, Scope.TASKS_WRITE)
        if not 1 <= len(operations) <= MAX_OPERATIONS:
            raise ValueError(f"a batch has 1 to {MAX_OPERATIONS} operations")
        steps = batch_steps(operations)
        if not atomic:
            # A stretch of creates that all succeed is written together (the same outcome as
            # one by one); when that write is refused, each create runs and fails on its own.
            writers = self._writers(self._uow_factory, self._events)
            return await _through(writers, caller, operations, steps, _failed)
        held = _HeldEvents()
        if len(steps) == 1 and steps[0][1]:
            # One write: it goes as one statement in a unit of its own (atomic by itself), so
            # the cap's counter is held only while it runs, not until a later COMMIT.
            writers = self._writers(self._uow_factory, self._events)
            created = await writers.create.execute_many(caller, steps[0][1])
            if created is not None:
                return _created(0, created)
            steps = [(i, []) for i in range(len(operations))]  # refused: one by one, below
        async with self._uow_factory() as uow:
            await uow.flush()  # the transaction is open from here on: nothing commits alone
            joined = _Joined(uow)
            writers = self._writers(lambda: joined, held)
            results = await _through(writers, caller, operations, steps, _abort)
            await uow.commit()
        for event in held.events:
            await self._events.publish(event)
        return results


def _created(start: int, tasks: Sequence[Task]) -> list[OperationResult]:
    return [OperationResult(start + i, Outcome.CREATED, task) for i, task in enumerate(tasks)]


def _failed(index: int, error: DomainError) -> OperationResult:
    return OperationResult(index, Outcome.FAILED, error=error)


def _abort(index: int, error: DomainError) -> OperationResult:
    raise BatchFailed(index, error) from error


async def _through(
    writers: _Writers,
    caller: Caller,
    operations: Sequence[Operation],
    steps: list[tuple[int, list[TaskDraft]]],
    on_error: Callable[[int, DomainError], OperationResult],
) -> list[OperationResult]:
    """Each step in order: a stretch of creates as one write when that goes through, else each
    of its operations by its single use case; `on_error` gives a failed one's result, or raises."""
    results: list[OperationResult] = []
    for start, run in steps:
        created = await writers.create.execute_many(caller, run) if run else None
        if created is not None:
            results += _created(start, created)
            continue
        for index in range(start, start + max(len(run), 1)):
            try:
                results.append(await _run(writers, caller, index, operations[index]))
            except DomainError as exc:
                results.append(on_error(index, exc))
    return results


def batch_steps(operations: Sequence[Operation]) -> list[tuple[int, list[TaskDraft]]]:
    """The operations cut into steps, each (its first index, its drafts): a stretch of two or
    more creates that `CreateTask.execute_many` may write together, or a single operation of
    any kind (no drafts: it runs alone)."""
    steps: list[tuple[int, list[TaskDraft]]] = []
    for index, operation in enumerate(operations):
        draft = operation.draft if isinstance(operation, CreateOp) else None
        if draft is None or not shares_one_step(draft, draft.project_id):
            steps.append((index, []))
        elif steps and steps[-1][1] and shares_one_step(draft, steps[-1][1][0].project_id):
            steps[-1][1].append(draft)
        else:
            steps.append((index, [draft]))
    return [(start, drafts if len(drafts) > 1 else []) for start, drafts in steps]


async def _run(
    writers: _Writers, caller: Caller, index: int, operation: Operation
) -> OperationResult:
    match operation:
        case CreateOp(draft):
            task = await writers.create.execute(caller, draft)
            return OperationResult(index, Outcome.CREATED, task)
        case UpdateOp(task_id, changes, expected_version):
            task = await writers.update.execute(caller, task_id, changes, expected_version)
            return OperationResult(index, Outcome.UPDATED, task)
        case DeleteOp(task_id, expected_version):
            await writers.delete.execute(caller, task_id, expected_version)
            return OperationResult(index, Outcome.DELETED)
        case Rejected(error):
            raise error
