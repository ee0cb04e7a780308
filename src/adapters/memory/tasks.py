"""In-memory task repository over one transaction's table (dict of task id -> Task).

Filtering, order and keyset follow `domain.task_queries` exactly; this twin is the reference the
SQL repository is tested against. The per-owner cap is checked by counting the owner's tasks in
the table (the SQL store keeps a counter instead; both answer alike).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from domain.task_queries import CursorPosition, TaskFilter, TaskQuery, TaskSort
from domain.tasks import Task, TaskLimitReached, fold_for_search

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
    if wanted.q is not None:
        needle = fold_for_search(wanted.q)
        haystacks = (task.title, task.description or "")
        if not any(needle in fold_for_search(text) for text in haystacks):
            return False
    return True


class MemoryTaskRepository:
    def __init__(self, table: dict[str, Any]) -> None:
        self._rows: dict[str, Task] = table

    async def add(self, task: Task, *, limit: int) -> None:
        if task.id in self._rows:
            raise ValueError(f"task {task.id} already exists")
        owner = task.owner_id
        if sum(1 for held in self._rows.values() if held.owner_id == owner) >= limit:
            raise TaskLimitReached(limit)
        self._rows[task.id] = task

    async def get(self, owner_id: str, task_id: str) -> Task | None:
        task = self._rows.get(task_id)
        return task if task is not None and task.owner_id == owner_id else None

    async def update(self, task: Task, expected_version: int) -> bool:
        stored = await self.get(task.owner_id, task.id)
        if stored is None or stored.version != expected_version:
            return False
        self._rows[task.id] = task
        return True

    async def delete(self, owner_id: str, task_id: str, expected_version: int) -> bool:
        stored = await self.get(owner_id, task_id)
        if stored is None or stored.version != expected_version:
            return False
        del self._rows[task_id]
        return True

    async def list_page(self, owner_id: str, query: TaskQuery, *, limit: int) -> list[Task]:
        sort: TaskSort = query.sort

        def key(task: Task) -> _Key:
            position = CursorPosition.of(task, sort)
            return _key(position.value, position.id)

        candidates = [
            task
            for task in self._rows.values()
            if task.owner_id == owner_id and _matches(task, query.filter)
        ]
        if query.after is not None:
            bound = _key(query.after.value, query.after.id)
            if sort.descending:
                candidates = [t for t in candidates if key(t) < bound]
            else:
                candidates = [t for t in candidates if key(t) > bound]
        candidates.sort(key=key, reverse=sort.descending)
        return candidates[:limit]
