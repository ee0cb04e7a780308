"""In-memory task repository over one transaction's tables (tasks: task id -> Task; the
memberships decide which tasks a user's reads reach).

Filtering, order and keyset follow `domain.task_queries` exactly; this twin is the reference the
SQL repository is tested against. The per-owner cap is checked by counting the owner's tasks in
the table, trashed ones too (the SQL store keeps a counter instead; both answer alike). A trashed
task keeps its row in "tasks" and has a `TrashMark` in "trash"; reads of live tasks skip it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from domain.comments import Comment
from domain.events import Event
from domain.ports.events import EventLog
from domain.ports.tasks import Readable, TaskInProject, TrashedInProject
from domain.projects import Membership, Project, Role
from domain.task_queries import NONE, CursorPosition, TaskFilter, TaskQuery, TaskSort
from domain.tasks import Task, TaskLimitReached, fold_for_search
from domain.trash import TrashedTask, TrashPosition

# Stands in for a NULL due_at inside a sort key; only ever compared with itself.
_NO_TIME = datetime.min.replace(tzinfo=UTC)

type _Key = tuple[bool, datetime | int, str]


def _key(value: datetime | int | None, task_id: str) -> _Key:
    """The ascending sort key: (value is NULL, value, id), so NULL counts as +infinity."""
    return (value is None, _NO_TIME if value is None else value, task_id)


def _matches(task: Task, wanted: TaskFilter) -> bool:
    if wanted.status is not None and task.status is not wanted.status:
        return False
    if wanted.priority is not None and task.priority != wanted.priority:
        return False
    if wanted.labels and not set(wanted.labels).issubset(task.labels):
        return False
    if wanted.due_before is not None or wanted.due_after is not None:
        if task.due_at is None:
            return False
        if wanted.due_before is not None and not task.due_at < wanted.due_before:
            return False
        if wanted.due_after is not None and not task.due_at >= wanted.due_after:
            return False
    if wanted.project_id is not None and task.project_id != wanted.project_id:
        return False
    if wanted.assignee_id is not None and task.assignee_id != (
        None if wanted.assignee_id == NONE else wanted.assignee_id
    ):
        return False
    if wanted.parent_id is not None and task.parent_id != (
        None if wanted.parent_id == NONE else wanted.parent_id
    ):
        return False
    if wanted.q is not None:
        needle = fold_for_search(wanted.q)
        haystacks = (task.title, task.description or "")
        if not any(needle in fold_for_search(text) for text in haystacks):
            return False
    return True


def descendants(rows: dict[str, Task], task_id: str) -> list[Task]:
    """Every task below `task_id`, level by level."""
    found: list[Task] = []
    frontier = {task_id}
    while frontier:
        level = [t for t in rows.values() if t.parent_id in frontier and t not in found]
        found.extend(level)
        frontier = {t.id for t in level}
    return found


@dataclass(frozen=True, slots=True)
class TrashMark:
    deleted_at: datetime
    trashed_with: str


def _bumped(task: Task, at: datetime) -> Task:
    return replace(task, version=task.version + 1, updated_at=at)


class MemoryTaskRepository:
    def __init__(self, tables: dict[str, dict[str, Any]], events: EventLog | None = None) -> None:
        self._events = events
        self._rows: dict[str, Task] = tables["tasks"]
        self._trash: dict[str, TrashMark] = tables["trash"]
        self._memberships: dict[str, Membership] = tables["memberships"]
        self._comments: dict[str, Comment] = tables["comments"]
        self._projects: dict[str, Project] = tables["projects"]

    async def add(self, task: Task, *, limit: int) -> None:
        if task.id in self._rows:
            raise ValueError(f"task {task.id} already exists")
        owner = task.owner_id
        if sum(1 for held in self._rows.values() if held.owner_id == owner) >= limit:
            raise TaskLimitReached(limit)
        self._rows[task.id] = task

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
        project_id: str | None = task.project_id
        if inbox:
            project_id = next(
                (
                    p.id
                    for p in self._projects.values()
                    if p.inbox and f"{p.id}/{user_id}" in self._memberships
                ),
                None,
            )
        membership = self._memberships.get(f"{project_id}/{user_id}")
        if project_id is None or membership is None or membership.role not in roles:
            return None
        placed = replace(task, project_id=project_id)
        await self.add(placed, limit=limit)
        if event is not None and self._events is not None:
            await self._events.append(event.placed_in(project_id))
        return placed

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
        owner = tasks[0].owner_id
        held = sum(1 for task in self._rows.values() if task.owner_id == owner)
        if held + len(tasks) > limit:
            return None
        placed: list[Task] = []
        for task, event in zip(tasks, events, strict=True):
            stored = await self.add_as_member(
                task, user_id=user_id, roles=roles, inbox=inbox, limit=limit, event=event
            )
            if stored is None:  # the same check for each: only the first can fail
                return None
            placed.append(stored)
        return placed

    async def get(self, task_id: str, user_id: str) -> TaskInProject | None:
        task = self._rows.get(task_id)
        if task is None or task_id in self._trash:
            return None
        return TaskInProject(task, self._memberships.get(f"{task.project_id}/{user_id}"))

    async def update(self, task: Task, expected_version: int) -> bool:
        stored = self._rows.get(task.id)
        if stored is None or stored.version != expected_version:
            return False
        self._rows[task.id] = task
        return True

    async def trash(self, task_id: str, expected_version: int, at: datetime) -> list[str]:
        stored = self._rows.get(task_id)
        if stored is None or task_id in self._trash or stored.version != expected_version:
            return []
        live = [t for t in descendants(self._rows, task_id) if t.id not in self._trash]
        for each in (stored, *live):
            self._rows[each.id] = _bumped(each, at)
            self._trash[each.id] = TrashMark(at, task_id)
        return [each.id for each in (stored, *live)]

    async def get_trashed(self, task_id: str, user_id: str) -> TrashedInProject | None:
        task, mark = self._rows.get(task_id), self._trash.get(task_id)
        if task is None or mark is None:
            return None
        trashed = TrashedTask(task, mark.deleted_at, mark.trashed_with)
        return TrashedInProject(trashed, self._memberships.get(f"{task.project_id}/{user_id}"))

    async def restore(self, task_id: str, expected_version: int, at: datetime) -> list[Task]:
        stored, mark = self._rows.get(task_id), self._trash.get(task_id)
        if stored is None or mark is None or stored.version != expected_version:
            return []
        back = [stored] + [
            t
            for t in descendants(self._rows, task_id)
            if (m := self._trash.get(t.id)) is not None and m.trashed_with == task_id
        ]
        restored = [_bumped(t, at) for t in back]
        for each in restored:
            self._rows[each.id] = each
            del self._trash[each.id]
        return restored

    async def delete(self, owner_id: str, task_id: str, expected_version: int) -> bool:
        stored = self._rows.get(task_id)
        if stored is None or stored.owner_id != owner_id or stored.version != expected_version:
            return False
        self._remove({task_id, *(t.id for t in descendants(self._rows, task_id))})
        return True

    def _remove(self, gone: set[str]) -> None:
        for each in gone:
            del self._rows[each]
            self._trash.pop(each, None)
        for comment_id, comment in list(self._comments.items()):
            if comment.task_id in gone:
                del self._comments[comment_id]

    async def list_trash(
        self, readable: Readable, project_id: str | None, after: TrashPosition | None, *, limit: int
    ) -> list[TrashedTask]:
        projects = self._readable(readable)
        found = [
            TrashedTask(task, mark.deleted_at, mark.trashed_with)
            for task_id, mark in self._trash.items()
            if (task := self._rows[task_id]).project_id in projects
            and (project_id is None or task.project_id == project_id)
        ]
        if after is not None:
            found = [t for t in found if (t.deleted_at, t.task.id) < (after.deleted_at, after.id)]
        found.sort(key=lambda t: (t.deleted_at, t.task.id), reverse=True)
        return found[:limit]

    async def purge_trash(self, before: datetime, limit: int) -> list[Task]:
        parents = {t.parent_id for t in self._rows.values()}
        expired = sorted(
            (mark.deleted_at, task_id)
            for task_id, mark in self._trash.items()
            if mark.deleted_at < before and task_id not in parents
        )
        purged = [self._rows[task_id] for _, task_id in expired[:limit]]
        self._remove({task.id for task in purged})
        return purged

    def _readable(self, readable: Readable) -> set[str]:
        return {
            m.project_id
            for m in self._memberships.values()
            if m.user_id == readable.user_id
            and m.role in readable.roles
            and (readable.only is None or m.project_id in readable.only)
        }

    async def list_page(self, readable: Readable, query: TaskQuery, *, limit: int) -> list[Task]:
        sort: TaskSort = query.sort

        def key(task: Task) -> _Key:
            position = CursorPosition.of(task, sort)
            return _key(position.value, position.id)

        projects = self._readable(readable)
        candidates = [
            task
            for task in self._rows.values()
            if task.project_id in projects
            and task.id not in self._trash
            and _matches(task, query.filter)
        ]
        if query.after is not None:
            bound = _key(query.after.value, query.after.id)
            if sort.descending:
                candidates = [t for t in candidates if key(t) < bound]
            else:
                candidates = [t for t in candidates if key(t) > bound]
        candidates.sort(key=key, reverse=sort.descending)
        return candidates[:limit]
