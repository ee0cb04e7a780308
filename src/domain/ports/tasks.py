"""Ports of the task aggregate: its repository, its unit of work, the event publisher."""

from __future__ import annotations

from collections.abc import Callable, Sequence, Set
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from domain.events import Event, TaskEvent
from domain.ports import UnitOfWorkBase
from domain.ports.events import EventLog
from domain.ports.projects import MembershipRepository, ProjectRepository, ProjectTasks
from domain.projects import Membership, Role
from domain.task_queries import TaskQuery
from domain.tasks import Task
from domain.trash import TrashedTask, TrashPosition


@dataclass(frozen=True, slots=True)
class TaskInProject:
    """A task with the membership of the asking user in its project (None: not a member),
    read together so that the access policy can decide without another query."""

    task: Task
    membership: Membership | None


@dataclass(frozen=True, slots=True)
class TrashedInProject:
    """A trashed task with the membership of the asking user in its project."""

    trashed: TrashedTask
    membership: Membership | None


@dataclass(frozen=True, slots=True)
class Readable:
    """Which projects a list may show: those where `user_id` has one of `roles`, and, for a
    key restricted to projects, only those in `only`."""

    user_id: str
    roles: frozenset[Role]
    only: Set[str] | None = None


class TaskRepository(Protocol):
    """Tasks of every project. Reads name the asking user, whose membership comes with them."""

    async def add(self, task: Task, *, limit: int) -> None:
        """Insert a new task (its id is new) unless its owner already holds `limit` tasks:
        then `TaskLimitReached`, and nothing is written. The count is exact and checked with the
        write, so concurrent adds never take an owner past `limit`. A store that writes at
        `commit()` (the raw PostgreSQL mode holds a lone insert until then) raises it from the
        unit of work's `commit()` instead."""
        ...

    async def add_as_member(
        self,
        task: Task,
        *,
        user_id: str,
        roles: frozenset[Role],
        inbox: bool,
        limit: int,
        event: Event | None = None,
    ) -> Task | None:
        """Insert `task` in one step with the check that `user_id` holds one of `roles` in its
        project (with `inbox`, in the user's inbox instead of `task.project_id`); the stored
        task, or None (nothing written) when the user does not. Under the cap of `add`: at
        `limit`, `TaskLimitReached` and nothing written. It runs at once and, as the
        first statement of a unit of work, may commit by itself: call it last. `event` (the
        task's created event) is recorded with the task, in the project it went to
        (`Event.placed_in`), in the same step."""
        ...

    async def add_many_as_member(
        self,
        tasks: Sequence[Task],
        *,
        user_id: str,
        roles: frozenset[Role],
        inbox: bool,
        limit: int,
        events: Sequence[Event],
    ) -> list[Task] | None:
        """`add_as_member` for several new tasks of one owner in one project (`inbox` as there),
        each with its created event (`events`, in the same order), all in one step: the stored
        tasks, or None when nothing was written. None also when the check or the cap refuses
        any of them, or when the store has no single step for it: the caller then adds them
        one by one, which says which one fails and why."""
        ...

    async def get(self, task_id: str, user_id: str) -> TaskInProject | None:
        """The live task with this id and `user_id`'s membership in its project, or None when
        no such task exists or it is in the trash."""
        ...

    async def update(self, task: Task, expected_version: int) -> bool:
        """Replace the stored task with `task` (same id and owner) if the stored version is
        still `expected_version`; False (nothing written) when it is not or the task is gone."""
        ...

    async def trash(self, task_id: str, expected_version: int, at: datetime) -> list[str]:
        """Move the live task, if its stored version is `expected_version`, and its live
        descendants to the trash: each gets `deleted_at = at`, `trashed_with = task_id`, a new
        version and `updated_at = at`. The ids of the tasks moved; none (nothing written) when
        the version is not current or the task is not live. Trashed tasks keep their places
        under the cap."""
        ...

    async def get_trashed(self, task_id: str, user_id: str) -> TrashedInProject | None:
        """The trashed task with this id and `user_id`'s membership in its project, or None
        when no task with this id is in the trash."""
        ...

    async def restore(self, task_id: str, expected_version: int, at: datetime) -> list[Task]:
        """Bring back the trashed task, if its stored version is `expected_version`, with the
        tasks trashed with it (`trashed_with = task_id`), each with a new version and
        `updated_at = at`: the restored tasks, the task itself first. Empty (nothing written)
        when the version is not current or it is not in the trash."""
        ...

    async def delete(self, owner_id: str, task_id: str, expected_version: int) -> bool:
        """Delete the task for good (its subtasks go with it) if its stored version is
        `expected_version`; False when it is not, or the task is gone. `owner_id` is the task's
        creator, as stored. Each removed task frees a place under its creator's cap. The use
        cases call it only on a task read from the trash: its version proves it is still there
        (a restore gives it a new one)."""
        ...

    async def list_trash(
        self, readable: Readable, project_id: str | None, after: TrashPosition | None, *, limit: int
    ) -> list[TrashedTask]:
        """At most `limit` trashed tasks of the `readable` projects (only `project_id`'s when
        given), newest `deleted_at` first (then id descending), strictly after `after`."""
        ...

    async def purge_trash(self, before: datetime, limit: int) -> list[Task]:
        """Delete for good at most `limit` tasks trashed before `before` that have no subtask
        left (a tree goes leaves first, over several calls), each freeing its place under its
        creator's cap; the tasks that went, as they were. Concurrent calls (other workers) never
        take the same task twice nor wait on each other's choice (PostgreSQL: `FOR UPDATE SKIP
        LOCKED`)."""
        ...

    async def list_page(self, readable: Readable, query: TaskQuery, *, limit: int) -> list[Task]:
        """At most `limit` tasks of the `readable` projects matching `query.filter`, in
        `query.sort` order, strictly after `query.after` (see `domain.task_queries`).
        `query.limit` is ignored here: the use case asks for one more than a page to learn
        whether another page exists."""
        ...


class TaskUnitOfWork(UnitOfWorkBase, Protocol):
    """One transaction over tasks and what their rules read: projects, memberships and the
    task tree."""

    @property
    def tasks(self) -> TaskRepository: ...

    @property
    def projects(self) -> ProjectRepository: ...

    @property
    def memberships(self) -> MembershipRepository: ...

    @property
    def project_tasks(self) -> ProjectTasks: ...

    async def flush(self) -> None:
        """Open the transaction if it is not open yet, and write what the unit holds back
        (inserts a store keeps until `commit()`), raising a held insert's refusal as
        `commit()` would; commits nothing. After it, no statement of the unit commits by
        itself: several use cases can then share the one transaction (a batch)."""
        ...

    @property
    def events(self) -> EventLog: ...


type TaskUnitOfWorkFactory = Callable[[], TaskUnitOfWork]


class EventPublisher(Protocol):
    async def publish(self, event: TaskEvent) -> None:
        """Hand the event on. Called after the commit; must not raise (log and drop instead)."""
        ...
