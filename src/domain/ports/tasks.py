"""Ports of the task aggregate: its repository, its unit of work, the event publisher."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from domain.events import TaskEvent
from domain.ports import UnitOfWorkBase
from domain.task_queries import TaskQuery
from domain.tasks import Task


class TaskRepository(Protocol):
    """Tasks of every owner; reads are always scoped to one owner."""

    async def add(self, task: Task, *, limit: int) -> None:
        """Insert a new task (its id is new) unless its owner already holds `limit` tasks:
        then `TaskLimitReached`, and nothing is written. The count is exact and checked with the
        write, so concurrent adds never take an owner past `limit`. A store that writes at
        `commit()` (the raw PostgreSQL mode holds a lone insert until then) raises it from the
        unit of work's `commit()` instead."""
        ...

    async def get(self, owner_id: str, task_id: str) -> Task | None:
        """The task with this id if `owner_id` owns it, else None."""
        ...

    async def update(self, task: Task, expected_version: int) -> bool:
        """Replace the stored task with `task` (same id and owner) if the stored version is
        still `expected_version`; False (nothing written) when it is not or the task is gone."""
        ...

    async def delete(self, owner_id: str, task_id: str, expected_version: int) -> bool:
        """Delete the owner's task if its stored version is `expected_version` (which frees
        room under the owner's cap); False when it is not, or the task is gone."""
        ...

    async def list_page(self, owner_id: str, query: TaskQuery, *, limit: int) -> list[Task]:
        """At most `limit` of the owner's tasks matching `query.filter`, in `query.sort` order,
        strictly after `query.after` (see `domain.task_queries`). `query.limit` is ignored here: the
        use case asks for one more than a page to learn whether another page exists."""
        ...


class TaskUnitOfWork(UnitOfWorkBase, Protocol):
    @property
    def tasks(self) -> TaskRepository: ...


type TaskUnitOfWorkFactory = Callable[[], TaskUnitOfWork]


class EventPublisher(Protocol):
    async def publish(self, event: TaskEvent) -> None:
        """Hand the event on. Called after the commit; must not raise (log and drop instead)."""
        ...
