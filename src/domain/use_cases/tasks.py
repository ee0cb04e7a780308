"""Task use cases: create, get, list, update, delete (to the trash), and the trash: list, restore,
delete for good. One transaction per call.

The caller (`domain.access.Caller`, e.g. a `Principal`) reaches a task through its project: the
access policy (`POLICY`) decides from the caller's membership, read in the same transaction as
the task (a task the caller may not reach, or an id that is not a canonical UUID, is `NotFound`
naming the task). Subtasks, assignees and moves follow `domain.task_tree`. Every change records
its events on the unit of work (one per task changed, a moved or deleted subtree included), so
they commit with it; the log notices (`TaskEvent`) are published after the commit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from domain.access import POLICY, Action, Caller, project_not_found, require_scope
from domain.auth import Scope
from domain.errors import (
    Conflict,
    DomainError,
    FieldError,
    FieldErrors,
    NotFound,
    PreconditionFailed,
)
from domain.events import EventMaker, EventType, TaskEvent, TaskEventName
from domain.ports import Clock, IdGenerator
from domain.ports.tasks import (
    EventPublisher,
    Readable,
    TaskInProject,
    TaskUnitOfWork,
    TaskUnitOfWorkFactory,
    TrashedInProject,
)
from domain.projects import Role
from domain.task_queries import CursorPosition, TaskQuery
from domain.task_tree import (
    TaskNode,
    assignee_errors,
    parent_errors,
    plan_move,
    subtree_height,
)
from domain.tasks import (
    DEFAULT_MAX_TASKS_PER_OWNER,
    Task,
    TaskDraft,
    apply_changes,
    carried_along,
    is_task_id,
    new_task,
)
from domain.trash import MAX_TRASH_PAGE, TrashedTask, TrashPosition

_HEADING = "invalid task fields"


def _not_found(task_id: str) -> NotFound:
    return NotFound(f"task {task_id!r} not found")


def _lost_race(expected_version: int | None) -> Exception:
    if expected_version is not None:
        return PreconditionFailed(
            "the task was changed meanwhile; its version is no longer current"
        )
    return Conflict("the task was changed concurrently; read it again and retry")


def _node(task: Task) -> TaskNode:
    return TaskNode(task.id, task.project_id, task.parent_id, task.assignee_id)


async def _reached(
    uow: TaskUnitOfWork, caller: Caller, task_id: str, action: Action
) -> TaskInProject:
    """The task and the caller's membership, once the policy allows `action` on it."""
    if not is_task_id(task_id):
        raise _not_found(task_id)
    found = await uow.tasks.get(task_id, caller.user_id)
    if found is None:
        raise _not_found(task_id)
    POLICY.require(
        caller, found.task.project_id, found.membership, action, not_found=_not_found(task_id)
    )
    return found


async def _parent_errors(
    uow: TaskUnitOfWork, task_id: str | None, project_id: str, parent_id: str, height: int
) -> list[FieldError]:
    parent = await uow.project_tasks.node(parent_id) if is_task_id(parent_id) else None
    ancestors = await uow.project_tasks.ancestors(parent_id) if parent is not None else []
    return parent_errors(
        task_id=task_id,
        project_id=project_id,
        parent=parent,
        parent_ancestors=ancestors,
        height=height,
    )


async def _assignee_errors(
    uow: TaskUnitOfWork, project_id: str, assignee_id: str | None
) -> list[FieldError]:
    if assignee_id is None:
        return []
    return assignee_errors(assignee_id, await uow.memberships.member_ids(project_id))


def _raise_if_any(errors: list[FieldError]) -> None:
    collected = FieldErrors()
    collected.errors.extend(errors)
    collected.raise_if_any(_HEADING)


def _requested(project_id: object) -> str | None:
    """The project a draft names (a string), else None (the inbox)."""
    return project_id if isinstance(project_id, str) else None


def shares_one_step(draft: TaskDraft, project_id: object) -> bool:
    """Whether `CreateTask.execute_many` may write `draft` with others for `project_id`: it
    names that project (or, like it, none), and no parent or assignee (their checks read the
    tree and the members first)."""
    return (
        draft.parent_id is None
        and draft.assignee_id is None
        and (draft.project_id is None or isinstance(draft.project_id, str))
        and draft.project_id == project_id
    )


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

    async def execute(self, caller: Caller, draft: TaskDraft) -> Task:
        """The new task (version 1) in `draft.project_id`, else the caller's inbox. Checked in
        order: `Invalid` for the fields' own rules; the project (a restricted key must name
        one; `NotFound` / `Forbidden` by the access policy); `Invalid` on `parent_id` /
        `assignee_id` for the tree and member rules; then `TaskLimitReached` when the caller
        already holds `max_tasks` tasks."""
        task = new_task(
            task_id=self._ids.new_id(),
            owner_id=caller.user_id,
            project_id="",
            draft=draft,
            now=self._clock.now(),
        )
        requested = _requested(draft.project_id)
        make = EventMaker(self._ids.new_id, caller, task.created_at)
        async with self._uow_factory() as uow:
            if task.parent_id is None and task.assignee_id is None:
                task = await self._place(uow, caller, task, requested, make)
            else:
                task = await self._place_in_tree(uow, caller, task, requested)
                await uow.events.append(make.task(EventType.TASK_CREATED, task))
            await uow.commit()
        await self._announce(caller, task)
        return task

    async def _announce(self, caller: Caller, task: Task) -> None:
        """The log notice of a created task, once it is committed."""
        await self._events.publish(
            TaskEvent(TaskEventName.CREATED, task.id, caller.user_id, task.created_at, task.version)
        )

    @staticmethod
    def _writing_in(caller: Caller, requested: str | None) -> tuple[str | None, frozenset[Role]]:
        """The project a create goes to (None: the caller's inbox) and the roles that may write
        tasks there."""
        target = POLICY.task_project_for_create(caller, requested, None)
        return target, POLICY.required_roles(caller, target, Action.WRITE_TASKS)

    async def execute_many(self, caller: Caller, drafts: Sequence[TaskDraft]) -> list[Task] | None:
        """`execute` for several drafts of one project (`project_id`, else the inbox), none with
        a parent or an assignee (`shares_one_step`): the new tasks, created at one time and
        written in one step, or None when nothing was written because a draft, the access
        policy, the cap or the store refused that step; `execute` for each draft in turn then
        says which one fails and why."""
        requested = drafts[0].project_id
        if not all(shares_one_step(draft, requested) for draft in drafts):
            raise ValueError("drafts of one step name one project and no parent or assignee")
        try:
            target, roles = self._writing_in(caller, _requested(requested))
            now = self._clock.now()  # one change: the tasks are created at the same time
            tasks = [
                new_task(
                    task_id=self._ids.new_id(),
                    owner_id=caller.user_id,
                    project_id=target or "",
                    draft=draft,
                    now=now,
                )
                for draft in drafts
            ]
        except DomainError:
            return None
        make = EventMaker(self._ids.new_id, caller, now)
        async with self._uow_factory() as uow:
            # The events (each a copy of its task's fields) are made once the unit of work is
            # open: a request still waiting to open one holds only its tasks.
            placed = await uow.tasks.add_many_as_member(
                tasks,
                user_id=caller.user_id,
                roles=roles,
                inbox=target is None,
                limit=self._max_tasks,
                events=[make.task(EventType.TASK_CREATED, task) for task in tasks],
            )
            if placed is None:
                return None
            await uow.commit()
        for task in placed:
            await self._announce(caller, task)
        return placed

    async def _place(
        self,
        uow: TaskUnitOfWork,
        caller: Caller,
        task: Task,
        requested: str | None,
        make: EventMaker,
    ) -> Task:
        """Insert with the membership check and the created event in the same step (one round
        trip); when nothing was written, the policy on what is stored says why."""
        target, roles = self._writing_in(caller, requested)
        task = replace(task, project_id=target or "")
        placed = await uow.tasks.add_as_member(
            task,
            user_id=caller.user_id,
            roles=roles,
            inbox=target is None,
            limit=self._max_tasks,
            event=make.task(EventType.TASK_CREATED, task),
        )
        if placed is not None:
            return placed
        project_id = await self._project(uow, caller, requested)
        membership = (
            await uow.memberships.get(project_id, caller.user_id)
            if is_task_id(project_id)
            else None
        )
        POLICY.require(caller, project_id, membership, Action.WRITE_TASKS)
        raise Conflict("the project's members changed meanwhile; retry")

    async def _place_in_tree(
        self, uow: TaskUnitOfWork, caller: Caller, task: Task, requested: str | None
    ) -> Task:
        """With a parent or an assignee: access first, then the tree and member rules."""
        project_id = await self._project(uow, caller, requested)
        membership = (
            await uow.memberships.get(project_id, caller.user_id)
            if is_task_id(project_id)
            else None
        )
        POLICY.require(caller, project_id, membership, Action.WRITE_TASKS)
        errors: list[FieldError] = []
        if task.parent_id is not None:
            errors += await _parent_errors(uow, None, project_id, task.parent_id, 1)
        errors += await _assignee_errors(uow, project_id, task.assignee_id)
        _raise_if_any(errors)
        task = replace(task, project_id=project_id)
        await uow.tasks.add(task, limit=self._max_tasks)
        return task

    @staticmethod
    async def _project(uow: TaskUnitOfWork, caller: Caller, requested: str | None) -> str:
        target = POLICY.task_project_for_create(caller, requested, None)
        if target is not None:
            return target
        inbox = await uow.projects.inbox_of(caller.user_id)
        if inbox is None:
            raise project_not_found("inbox")
        return inbox.id


class GetTask:
    def __init__(self, uow_factory: TaskUnitOfWorkFactory) -> None:
        self._uow_factory = uow_factory

    async def execute(self, caller: Caller, task_id: str) -> Task:
        """The task, when the caller may read its project. Raises `NotFound` / `Forbidden`."""
        async with self._uow_factory() as uow:
            return (await _reached(uow, caller, task_id, Action.READ_TASKS)).task


@dataclass(frozen=True, slots=True)
class TaskPage:
    """One page of a list; `next_position` is None on the last page."""

    items: tuple[Task, ...]
    next_position: CursorPosition | None


class ListTasks:
    def __init__(self, uow_factory: TaskUnitOfWorkFactory) -> None:
        self._uow_factory = uow_factory

    async def execute(self, caller: Caller, query: TaskQuery) -> TaskPage:
        """Up to `query.limit` tasks of the projects the caller (and its key) may read, after
        `query.after`, and where the next page starts."""
        require_scope(caller, Scope.TASKS_READ)
        readable = Readable(
            caller.user_id, POLICY.roles_allowing(Action.READ_TASKS), caller.project_ids
        )
        query = replace(query, filter=query.filter.for_caller(caller.user_id))
        async with self._uow_factory() as uow:
            rows = await uow.tasks.list_page(readable, query, limit=query.limit + 1)
        items = tuple(rows[: query.limit])
        more = len(rows) > query.limit
        return TaskPage(items, CursorPosition.of(items[-1], query.sort) if more else None)


def _check_version(task: Task, expected_version: int | None) -> None:
    if expected_version is not None and expected_version != task.version:
        raise PreconditionFailed(
            f"version {expected_version} is stale; the task is at version {task.version}"
        )


class UpdateTask:
    def __init__(
        self,
        uow_factory: TaskUnitOfWorkFactory,
        clock: Clock,
        events: EventPublisher,
        *,
        ids: IdGenerator,
    ) -> None:
        self._uow_factory, self._clock, self._events = uow_factory, clock, events
        self._ids = ids

    async def execute(
        self,
        caller: Caller,
        task_id: str,
        changes: Mapping[str, object],
        expected_version: int | None = None,
    ) -> Task:
        """The task after a merge patch (see `domain.tasks.apply_changes`).

        Checked in this order: `NotFound` / `Forbidden` (write access to the task's project);
        `PreconditionFailed` when `expected_version` is given and is not the current version;
        `Invalid` for the patch's fields; for a move (a new `project_id`) write access to the
        target project; `Invalid` on `parent_id` / `assignee_id` for the tree and member rules.
        A move carries the task's descendants along, each with a new version. A patch that
        changes nothing returns the task as it is (no write, no event). Losing a race to a
        concurrent writer is `PreconditionFailed` when `expected_version` was given, else
        `Conflict`.
        """
        now = self._clock.now()
        make = EventMaker(self._ids.new_id, caller, now)
        async with self._uow_factory() as uow:
            found = await _reached(uow, caller, task_id, Action.WRITE_TASKS)
            task = found.task
            _check_version(task, expected_version)
            updated = apply_changes(task, changes, now)
            if updated is task:
                return task
            recorded = [make.task(EventType.TASK_UPDATED, updated, before=task)]
            if updated.project_id != task.project_id:
                moved = await self._move(uow, caller, found, updated, expected_version)
                recorded += [
                    make.task(EventType.TASK_UPDATED, after, before) for before, after in moved
                ]
            else:
                errors: list[FieldError] = []
                if updated.parent_id is not None and updated.parent_id != task.parent_id:
                    height = subtree_height(task.id, await uow.project_tasks.subtree(task.id))
                    errors += await _parent_errors(
                        uow, task.id, task.project_id, updated.parent_id, height
                    )
                if updated.assignee_id != task.assignee_id:
                    errors += await _assignee_errors(uow, task.project_id, updated.assignee_id)
                _raise_if_any(errors)
                if not await uow.tasks.update(updated, task.version):
                    raise _lost_race(expected_version)
            await uow.events.append(*recorded)
            await uow.commit()
        await self._events.publish(
            TaskEvent(
                TaskEventName.UPDATED, task.id, caller.user_id, updated.updated_at, updated.version
            )
        )
        return updated

    async def _move(
        self,
        uow: TaskUnitOfWork,
        caller: Caller,
        found: TaskInProject,
        updated: Task,
        expected_version: int | None,
    ) -> list[tuple[Task, Task]]:
        """Move the task and its descendants into `updated.project_id`; each descendant
        before and after."""
        task, target_id = found.task, updated.project_id
        target = (
            await uow.memberships.get(target_id, caller.user_id) if is_task_id(target_id) else None
        )
        POLICY.require_move(
            caller,
            task.project_id,
            found.membership,
            target_id,
            target,
            not_found=_not_found(task.id),
        )
        subtree = await uow.project_tasks.subtree(task.id)
        new_parent, ancestors = None, []
        if updated.parent_id is not None and is_task_id(updated.parent_id):
            new_parent = await uow.project_tasks.node(updated.parent_id)
            if new_parent is not None:
                ancestors = await uow.project_tasks.ancestors(updated.parent_id)
        plan, errors = plan_move(
            task=_node(task),
            subtree=subtree,
            new_project_id=target_id,
            new_parent=new_parent,
            new_parent_id=updated.parent_id,
            new_parent_ancestors=ancestors,
            new_assignee_id=updated.assignee_id,
            target_member_ids=await uow.memberships.member_ids(target_id),
        )
        _raise_if_any(errors)
        if not await uow.tasks.update(updated, task.version):
            raise _lost_race(expected_version)
        cleared = set(plan.clear_assignee_of)
        carried: list[tuple[Task, Task]] = []
        for descendant in await uow.project_tasks.subtree_tasks(task.id):
            moved = carried_along(
                descendant,
                project_id=target_id,
                keep_assignee=descendant.id not in cleared,
                now=updated.updated_at,
            )
            if not await uow.tasks.update(moved, descendant.version):
                raise _lost_race(expected_version)
            carried.append((descendant, moved))
        return carried


class DeleteTask:
    def __init__(
        self,
        uow_factory: TaskUnitOfWorkFactory,
        clock: Clock,
        events: EventPublisher,
        *,
        ids: IdGenerator,
    ) -> None:
        self._uow_factory, self._clock, self._events = uow_factory, clock, events
        self._ids = ids

    async def execute(
        self, caller: Caller, task_id: str, expected_version: int | None = None
    ) -> None:
        """Move the task and its live descendants to the trash (write access to its project).
        Raises `NotFound` / `Forbidden`, then `PreconditionFailed` when `expected_version` is
        given and stale (or a concurrent writer wins), else `Conflict` when a concurrent writer
        changed it meanwhile."""
        now = self._clock.now()
        make = EventMaker(self._ids.new_id, caller, now)
        async with self._uow_factory() as uow:
            task = (await _reached(uow, caller, task_id, Action.WRITE_TASKS)).task
            _check_version(task, expected_version)
            descendants = await uow.project_tasks.subtree_tasks(task_id)
            trashed = set(await uow.tasks.trash(task_id, task.version, now))
            if not trashed:
                raise _lost_race(expected_version)
            # One event per task that went (a descendant trashed earlier is already there).
            await uow.events.append(
                *(
                    make.task(EventType.TASK_DELETED, gone)
                    for gone in (task, *descendants)
                    if gone.id in trashed
                )
            )
            await uow.commit()
        await self._events.publish(
            TaskEvent(TaskEventName.DELETED, task_id, caller.user_id, now, task.version)
        )


def _not_in_trash(task_id: str) -> NotFound:
    return NotFound(f"task {task_id!r} not found in the trash")


async def _reached_in_trash(
    uow: TaskUnitOfWork, caller: Caller, task_id: str, action: Action
) -> TrashedInProject:
    """The trashed task and the caller's membership, once the policy allows `action` on it."""
    found = await uow.tasks.get_trashed(task_id, caller.user_id) if is_task_id(task_id) else None
    if found is None:
        raise _not_in_trash(task_id)
    project_id = found.trashed.task.project_id
    POLICY.require(caller, project_id, found.membership, action, not_found=_not_in_trash(task_id))
    return found


@dataclass(frozen=True, slots=True)
class TrashPage:
    """One page of the trash; `next_position` is None on the last page."""

    items: tuple[TrashedTask, ...]
    next_position: TrashPosition | None


class ListTrash:
    def __init__(self, uow_factory: TaskUnitOfWorkFactory) -> None:
        self._uow_factory = uow_factory

    async def execute(
        self,
        caller: Caller,
        *,
        project_id: str | None,
        after: TrashPosition | None,
        limit: int,
    ) -> TrashPage:
        """Up to `limit` (1-200, else `Invalid` on `limit`) trashed tasks of the projects the
        caller (and its key) may read, newest `deleted_at` first, after `after`; only
        `project_id`'s when given (one the caller cannot read: none)."""
        require_scope(caller, Scope.TASKS_READ)
        if not 1 <= limit <= MAX_TRASH_PAGE:
            _raise_if_any([FieldError("limit", f"must be between 1 and {MAX_TRASH_PAGE}")])
        readable = Readable(
            caller.user_id, POLICY.roles_allowing(Action.READ_TASKS), caller.project_ids
        )
        async with self._uow_factory() as uow:
            rows = await uow.tasks.list_trash(readable, project_id, after, limit=limit + 1)
        items = tuple(rows[:limit])
        more = len(rows) > limit
        return TrashPage(items, TrashPosition.of(items[-1]) if more else None)


class RestoreTask:
    def __init__(
        self,
        uow_factory: TaskUnitOfWorkFactory,
        clock: Clock,
        events: EventPublisher,
        *,
        ids: IdGenerator,
    ) -> None:
        self._uow_factory, self._clock, self._events = uow_factory, clock, events
        self._ids = ids

    async def execute(self, caller: Caller, task_id: str) -> Task:
        """The task back from the trash, with the descendants trashed with it, each with a new
        version (write access to its project). Raises `NotFound` (not in the trash, or not
        reachable) / `Forbidden`, then `Conflict` when its parent is still in the trash or a
        concurrent writer restored or deleted it meanwhile."""
        now = self._clock.now()
        async with self._uow_factory() as uow:
            task = (await _reached_in_trash(uow, caller, task_id, Action.WRITE_TASKS)).trashed.task
            if task.parent_id is not None and await uow.project_tasks.node(task.parent_id) is None:
                raise Conflict(
                    f"the parent task {task.parent_id!r} is still in the trash; restore it first"
                )
            restored = await uow.tasks.restore(task_id, task.version, now)
            if not restored:
                raise _lost_race(None)
            make = EventMaker(self._ids.new_id, caller, now)
            await uow.events.append(*(make.task(EventType.TASK_RESTORED, t) for t in restored))
            await uow.commit()
        for each in restored:
            await self._events.publish(
                TaskEvent(TaskEventName.RESTORED, each.id, caller.user_id, now, each.version)
            )
        return restored[0]


class DeleteTrashedTask:
    def __init__(
        self,
        uow_factory: TaskUnitOfWorkFactory,
        clock: Clock,
        events: EventPublisher,
        *,
        ids: IdGenerator,
    ) -> None:
        self._uow_factory, self._clock, self._events = uow_factory, clock, events
        self._ids = ids

    async def execute(self, caller: Caller, task_id: str) -> None:
        """Delete the trashed task and its descendants for good (write access to its project),
        freeing their places under their creators' caps. Raises `NotFound` (not in the trash,
        or not reachable) / `Forbidden`, then `Conflict` when a concurrent writer restored or
        deleted it meanwhile."""
        async with self._uow_factory() as uow:
            found = await _reached_in_trash(uow, caller, task_id, Action.WRITE_TASKS)
            task = found.trashed.task
            descendants = await uow.project_tasks.subtree_tasks(task_id)
            if not await uow.tasks.delete(task.owner_id, task_id, task.version):
                raise _lost_race(None)
            make = EventMaker(self._ids.new_id, caller, self._clock.now())
            await uow.events.append(
                *(make.task(EventType.TASK_PURGED, gone) for gone in (task, *descendants))
            )
            await uow.commit()
        await self._events.publish(
            TaskEvent(
                TaskEventName.PURGED, task_id, caller.user_id, self._clock.now(), task.version
            )
        )
