"""Task use cases: create, get, list, update, delete. One transaction per call.

The caller (HTTP layer) has already authenticated the principal and checked its scope; each use
case receives the acting owner's id and only ever sees that owner's tasks: another owner's task,
or an id that is not a canonical UUID, is `NotFound`. Events are published after the commit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from domain.errors import Conflict, NotFound, PreconditionFailed
from domain.events import TaskEvent, TaskEventName
from domain.ports import Clock, IdGenerator
from domain.ports.tasks import EventPublisher, TaskUnitOfWork, TaskUnitOfWorkFactory
from domain.task_queries import CursorPosition, TaskQuery
from domain.tasks import (
    DEFAULT_MAX_TASKS_PER_OWNER,
    Task,
    TaskDraft,
    apply_changes,
    is_task_id,
    new_task,
)


def _not_found(task_id: str) -> NotFound:
    return NotFound(f"task {task_id!r} not found")


def _lost_race(expected_version: int | None) -> Exception:
    if expected_version is not None:
        return PreconditionFailed(
            "the task was changed meanwhile; its version is no longer current"
        )
    return Conflict("the task was changed concurrently; read it again and retry")


class CreateTask:
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

    async def execute(self, owner_id: str, draft: TaskDraft) -> Task:
        """The new task (version 1). Raises `Invalid` naming every offending field, then
        `TaskLimitReached` when the owner already holds `max_tasks` tasks."""
        task = new_task(
            task_id=self._ids.new_id(), owner_id=owner_id, draft=draft, now=self._clock.now()
        )
        async with self._uow_factory() as uow:
            # The store counts and writes in one step (see TaskRepository.add).
            await uow.tasks.add(task, limit=self._max_tasks)
            await uow.commit()
        await self._events.publish(
            TaskEvent(TaskEventName.CREATED, task.id, owner_id, task.created_at, task.version)
        )
        return task


class GetTask:
    def __init__(self, uow_factory: TaskUnitOfWorkFactory) -> None:
        self._uow_factory = uow_factory

    async def execute(self, owner_id: str, task_id: str) -> Task:
        """The owner's task. Raises `NotFound`."""
        if not is_task_id(task_id):
            raise _not_found(task_id)
        async with self._uow_factory() as uow:
            task = await uow.tasks.get(owner_id, task_id)
        if task is None:
            raise _not_found(task_id)
        return task


@dataclass(frozen=True, slots=True)
class TaskPage:
    """One page of a list; `next_position` is None on the last page."""

    items: tuple[Task, ...]
    next_position: CursorPosition | None


class ListTasks:
    def __init__(self, uow_factory: TaskUnitOfWorkFactory) -> None:
        self._uow_factory = uow_factory

    async def execute(self, owner_id: str, query: TaskQuery) -> TaskPage:
        """Up to `query.limit` tasks after `query.after`, and where the next page starts."""
        async with self._uow_factory() as uow:
            rows = await uow.tasks.list_page(owner_id, query, limit=query.limit + 1)
        items = tuple(rows[: query.limit])
        more = len(rows) > query.limit
        return TaskPage(items, CursorPosition.of(items[-1], query.sort) if more else None)


class UpdateTask:
    def __init__(
        self, uow_factory: TaskUnitOfWorkFactory, clock: Clock, events: EventPublisher
    ) -> None:
        self._uow_factory, self._clock, self._events = uow_factory, clock, events

    async def execute(
        self,
        owner_id: str,
        task_id: str,
        changes: Mapping[str, object],
        expected_version: int | None = None,
    ) -> Task:
        """The task after a merge patch (see `domain.tasks.apply_changes`).

        Checked in this order: `NotFound`; `PreconditionFailed` when `expected_version` is given
        and is not the current version; `Invalid` for the patch. A patch that changes nothing
        returns the task as it is (no write, no event). Losing a race to a concurrent writer is
        `PreconditionFailed` when `expected_version` was given, else `Conflict`.
        """
        if not is_task_id(task_id):
            raise _not_found(task_id)
        async with self._uow_factory() as uow:
            task = await _current(uow, owner_id, task_id, expected_version)
            updated = apply_changes(task, changes, self._clock.now())
            if updated is task:
                return task
            if not await uow.tasks.update(updated, task.version):
                raise _lost_race(expected_version)
            await uow.commit()
        await self._events.publish(
            TaskEvent(TaskEventName.UPDATED, task.id, owner_id, updated.updated_at, updated.version)
        )
        return updated


async def _current(
    uow: TaskUnitOfWork, owner_id: str, task_id: str, expected_version: int | None
) -> Task:
    """The owner's task as stored: NotFound, then PreconditionFailed when the caller expects
    another version."""
    task = await uow.tasks.get(owner_id, task_id)
    if task is None:
        raise _not_found(task_id)
    if expected_version is not None and expected_version != task.version:
        raise PreconditionFailed(
            f"version {expected_version} is stale; the task is at version {task.version}"
        )
    return task


class DeleteTask:
    def __init__(
        self, uow_factory: TaskUnitOfWorkFactory, clock: Clock, events: EventPublisher
    ) -> None:
        self._uow_factory, self._clock, self._events = uow_factory, clock, events

    async def execute(
        self, owner_id: str, task_id: str, expected_version: int | None = None
    ) -> None:
        """Delete the owner's task. Raises `NotFound`, then `PreconditionFailed` when
        `expected_version` is given and stale (or a concurrent writer wins), else `Conflict`
        when a concurrent writer changed it meanwhile."""
        if not is_task_id(task_id):
            raise _not_found(task_id)
        async with self._uow_factory() as uow:
            task = await _current(uow, owner_id, task_id, expected_version)
            if not await uow.tasks.delete(owner_id, task_id, task.version):
                raise _lost_race(expected_version)
            await uow.commit()
        await self._events.publish(
            TaskEvent(TaskEventName.DELETED, task_id, owner_id, self._clock.now(), task.version)
        )
