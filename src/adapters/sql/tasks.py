"""SQL task repository and its row <-> entity mapper.

Filtering, order and keyset follow `domain.ports.tasks` exactly (the in-memory twin is the
reference). Only the labels filter differs by dialect (chosen once per repository):
`labels @> ARRAY[...]` on PostgreSQL (GIN index), a count over `json_each(labels)` on SQLite.
`q` is a LIKE (wildcards in the needle escaped) over the columns the mapper fills with
`fold_for_search`; no ASCII upper case survives case folding, so SQLite's ASCII-only
case-insensitive LIKE answers like PostgreSQL's case-sensitive one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    bindparam,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from adapters.sql.tables import tasks
from adapters.sql.types import is_canonical_uuid
from domain.ports.tasks import CursorPosition, SortValue, TaskFilter, TaskQuery, TaskSort
from domain.tasks import Task, TaskStatus, fold_for_search

_TASK_COLUMNS = (
    tasks.c.id,
    tasks.c.owner_id,
    tasks.c.title,
    tasks.c.description,
    tasks.c.status,
    tasks.c.priority,
    tasks.c.labels,
    tasks.c.due_at,
    tasks.c.completed_at,
    tasks.c.created_at,
    tasks.c.updated_at,
    tasks.c.version,
)
# The entity's columns in `task_from_row`'s order (the search columns are write-only).
TASK_COLUMN_NAMES = tuple(column.name for column in _TASK_COLUMNS)
_SELECT_TASKS = select(*_TASK_COLUMNS)
_INSERT_TASK = insert(tasks)
_SELECT_TASK = _SELECT_TASKS.where(
    tasks.c.id == bindparam("task_id"), tasks.c.owner_id == bindparam("owner_id")
)
# No .values(): the SET clause comes from the column-named parameters of each call.
_UPDATE_TASK = update(tasks).where(
    tasks.c.id == bindparam("where_id"),
    tasks.c.owner_id == bindparam("where_owner_id"),
    tasks.c.version == bindparam("expected_version"),
)
_DELETE_TASK = delete(tasks).where(
    tasks.c.id == bindparam("task_id"),
    tasks.c.owner_id == bindparam("owner_id"),
    tasks.c.version == bindparam("expected_version"),
)

_SORT_COLUMNS = {
    "created_at": tasks.c.created_at,
    "updated_at": tasks.c.updated_at,
    "due_at": tasks.c.due_at,
    "priority": tasks.c.priority,
}


def _order_by(sort: TaskSort) -> tuple[ColumnElement[Any], ...]:
    column = _SORT_COLUMNS[sort.field]
    if sort is TaskSort.DUE_AT:
        return column.asc().nulls_last(), tasks.c.id.asc()
    if sort is TaskSort.DUE_AT_DESC:
        return column.desc().nulls_first(), tasks.c.id.desc()
    if sort.descending:
        return column.desc(), tasks.c.id.desc()
    return column.asc(), tasks.c.id.asc()


_ORDER_BY = {sort: _order_by(sort) for sort in TaskSort}


def task_to_row(task: Task) -> dict[str, Any]:
    """Every column of `task`'s row, including the search columns."""
    description = task.description
    return {
        "id": task.id,
        "owner_id": task.owner_id,
        "title": task.title,
        "description": description,
        "status": task.status.value,
        "priority": task.priority,
        "labels": list(task.labels),
        "due_at": task.due_at,
        "completed_at": task.completed_at,
        "created_at": task.created_at,
        "updated_at": task.updated_at,
        "version": task.version,
        "title_folded": fold_for_search(task.title),
        "description_folded": None if description is None else fold_for_search(description),
    }


def task_from_row(row: Sequence[Any]) -> Task:
    """The task of a row holding `TASK_COLUMN_NAMES` in that order (ids as str)."""
    (
        task_id,
        owner_id,
        title,
        description,
        status,
        priority,
        labels,
        due_at,
        completed_at,
        created_at,
        updated_at,
        version,
    ) = row
    return Task(
        id=task_id,
        owner_id=owner_id,
        title=title,
        description=description,
        status=TaskStatus(status),
        priority=priority,
        labels=tuple(labels),
        due_at=due_at,
        completed_at=completed_at,
        created_at=created_at,
        updated_at=updated_at,
        version=version,
    )


def _has_all_labels_postgresql(labels: tuple[str, ...]) -> ColumnElement[bool]:
    return tasks.c.labels.contains(list(labels))


def _has_all_labels_sqlite(labels: tuple[str, ...]) -> ColumnElement[bool]:
    # Task labels are distinct, so counting the wanted ones among them tells "all present".
    each = func.json_each(tasks.c.labels).table_valued("value")
    found = select(func.count()).select_from(each).where(each.c.value.in_(labels))
    return found.scalar_subquery() == len(labels)


def _row_compare(
    column: ColumnElement[Any], value: SortValue, task_id: str, *, greater: bool
) -> ColumnElement[bool]:
    """`(column, id) > (value, task_id)` (or `<`), the bound values typed like the columns."""
    left = tuple_(column, tasks.c.id)
    right = tuple_(literal(value, column.type), literal(task_id, tasks.c.id.type))
    return left > right if greater else left < right


def _after(sort: TaskSort, position: CursorPosition) -> ColumnElement[bool]:
    """Rows strictly after `position` in `sort` order (see domain.ports.tasks)."""
    column = _SORT_COLUMNS[sort.field]
    value, task_id = position.value, position.id
    if sort.field != "due_at":
        return _row_compare(column, value, task_id, greater=not sort.descending)
    if sort.descending:
        if value is None:
            return or_(column.is_not(None), tasks.c.id < task_id)
        return _row_compare(column, value, task_id, greater=False)
    if value is None:
        return and_(column.is_(None), tasks.c.id > task_id)
    return or_(_row_compare(column, value, task_id, greater=True), column.is_(None))


class SqlTaskRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self._conn = connection
        if connection.dialect.name == "postgresql":
            self._has_all_labels = _has_all_labels_postgresql
        else:
            self._has_all_labels = _has_all_labels_sqlite

    async def add(self, task: Task) -> None:
        await self._conn.execute(_INSERT_TASK, task_to_row(task))

    async def get(self, owner_id: str, task_id: str) -> Task | None:
        if not is_canonical_uuid(task_id) or not is_canonical_uuid(owner_id):
            return None
        result = await self._conn.execute(_SELECT_TASK, {"task_id": task_id, "owner_id": owner_id})
        row = result.first()
        return None if row is None else task_from_row(row)

    async def update(self, task: Task, expected_version: int) -> bool:
        """One conditional UPDATE; True when it hit the row (no read first)."""
        params = task_to_row(task)
        del params["id"], params["owner_id"]
        params["where_id"] = task.id
        params["where_owner_id"] = task.owner_id
        params["expected_version"] = expected_version
        result = await self._conn.execute(_UPDATE_TASK, params)
        return result.rowcount == 1

    async def delete(self, owner_id: str, task_id: str, expected_version: int) -> bool:
        if not is_canonical_uuid(task_id) or not is_canonical_uuid(owner_id):
            return False
        params = {"task_id": task_id, "owner_id": owner_id, "expected_version": expected_version}
        result = await self._conn.execute(_DELETE_TASK, params)
        return result.rowcount == 1

    async def list_page(self, owner_id: str, query: TaskQuery, *, limit: int) -> list[Task]:
        if not is_canonical_uuid(owner_id):
            return []
        statement = self._page_statement(owner_id, query).limit(limit)
        result = await self._conn.execute(statement)
        return [task_from_row(row) for row in result]

    def _page_statement(self, owner_id: str, query: TaskQuery) -> Select[Any]:
        conditions: list[ColumnElement[bool]] = [tasks.c.owner_id == owner_id]
        conditions.extend(self._matching(query.filter))
        if query.after is not None:
            conditions.append(_after(query.sort, query.after))
        return _SELECT_TASKS.where(*conditions).order_by(*_ORDER_BY[query.sort])

    def _matching(self, wanted: TaskFilter) -> list[ColumnElement[bool]]:
        conditions: list[ColumnElement[bool]] = []
        if wanted.status is not None:
            conditions.append(tasks.c.status == wanted.status.value)
        if wanted.priority is not None:
            conditions.append(tasks.c.priority == wanted.priority)
        if wanted.labels:
            conditions.append(self._has_all_labels(wanted.labels))
        if wanted.due_after is not None:
            conditions.append(tasks.c.due_at >= wanted.due_after)
        if wanted.due_before is not None:
            conditions.append(tasks.c.due_at < wanted.due_before)
        if wanted.q is not None:
            needle = fold_for_search(wanted.q)
            conditions.append(
                or_(
                    tasks.c.title_folded.contains(needle, autoescape=True),
                    tasks.c.description_folded.contains(needle, autoescape=True),
                )
            )
        return conditions
