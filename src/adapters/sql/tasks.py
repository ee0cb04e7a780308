"""The task SQL, written once as SQLAlchemy Core statements, and the task repository.

Every task query is one of the statements below. A list's statement is built once per query
*shape* (its sort, which filters are present, what kind of keyset position), with every value a
named bound parameter, so the same statement object serves every call of that shape: SQLAlchemy
runs it on SQLite (and on any connection), and on PostgreSQL the raw driver path compiles it once
to positional text (`adapters.sql.compiled`).

Filtering, order and keyset follow `domain.task_queries` exactly (the in-memory twin is the
reference). Only the labels filter differs by dialect: `labels @> ARRAY[...]` on PostgreSQL (GIN
index), a count over `json_each(labels)` on SQLite. `q` is a LIKE (wildcards in the needle escaped)
over the columns the mapper fills with `fold_for_search`; no ASCII upper case survives case
folding, so SQLite's ASCII-only case-insensitive LIKE answers like PostgreSQL's case-sensitive one.

Parameter values are given in the form every driver takes as is (str ids, aware datetimes,
lists), and ids are read back cast to text, so no driver needs SQLAlchemy's per-type processing.

The per-owner cap: `task_counts` holds each owner's number of tasks, moved by the statement that
inserts or deletes a task. On PostgreSQL that is one statement each (data-modifying CTEs): the
counter is raised only while below the cap, and the task is inserted only when it was; its
upsert locks the owner's counter row, so concurrent creates at the cap queue there and the later
one sees the raised count. SQLite cannot modify data in a CTE: it runs the counter's statement
and the task's one after the other in the same transaction (its writers are serialised anyway).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from sqlalchemy import (
    ColumnElement,
    Delete,
    Executable,
    Insert,
    Integer,
    Select,
    String,
    Text,
    Update,
    and_,
    bindparam,
    cast,
    delete,
    func,
    insert,
    literal_column,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.dialects import sqlite

from adapters.sql.tables import task_counts, tasks
from adapters.sql.types import is_canonical_uuid
from domain.task_queries import TaskQuery, TaskSort
from domain.tasks import Task, TaskLimitReached, TaskStatus, fold_for_search

# Ids come back as canonical lower-case text under names of their own, so that `id` in WHERE
# and ORDER BY is still the uuid column and its index.
_TASK_COLUMNS = (
    cast(tasks.c.id, Text).label("id_text"),
    cast(tasks.c.owner_id, Text).label("owner_id_text"),
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
_SELECT_TASKS = select(*_TASK_COLUMNS)

INSERT_TASK: Insert = insert(tasks)
SELECT_TASK: Select[Any] = _SELECT_TASKS.where(
    tasks.c.id == bindparam("task_id"), tasks.c.owner_id == bindparam("owner_id")
)
# The row locates itself by its own id and owner; every other column is set.
_KEY_COLUMNS = frozenset({"id", "owner_id"})
UPDATE_TASK: Update = (
    update(tasks)
    .values({column: bindparam(column.key) for column in tasks.c if column.key not in _KEY_COLUMNS})
    .where(
        tasks.c.id == bindparam("where_id"),
        tasks.c.owner_id == bindparam("where_owner_id"),
        tasks.c.version == bindparam("expected_version"),
    )
)
# Named like UPDATE_TASK's: an UPDATE of `task_counts` run with these parameters (the counted
# delete) would take a parameter named like one of its columns as a value to SET.
DELETE_TASK: Delete = delete(tasks).where(
    tasks.c.id == bindparam("where_id"),
    tasks.c.owner_id == bindparam("where_owner_id"),
    tasks.c.version == bindparam("expected_version"),
)

# --- the per-owner count -------------------------------------------------------------------------
_ONE = literal_column("1", Integer())


def _count_one_more(insert_into: Any) -> Any:
    """`owner_id`'s counter plus one (a new counter at 1), unless it is already at `max_tasks`:
    then the row is left as it is and the statement hits (and returns) nothing."""
    upsert = insert_into(task_counts).values(owner_id=bindparam("owner_id"), n=_ONE)
    return upsert.on_conflict_do_update(
        index_elements=[task_counts.c.owner_id],
        set_={"n": task_counts.c.n + _ONE},
        where=task_counts.c.n < bindparam("max_tasks", type_=Integer()),
    )


# PostgreSQL: the task is inserted from the counter's RETURNING, so it exists only when the
# counter moved; the status "INSERT 0 0" means the cap refused it. Takes `task_to_row` and
# `max_tasks`.
_COUNTED = _count_one_more(pg.insert).returning(task_counts.c.n).cte("counted")
INSERT_COUNTED_TASK: Insert = insert(tasks).from_select(
    [column.key for column in tasks.c],
    select(*(bindparam(column.key, type_=column.type) for column in tasks.c)).select_from(_COUNTED),
)
# PostgreSQL: the counter goes down by the tasks the DELETE removed (0 or 1); the one row back
# is that number.
_GONE = DELETE_TASK.returning(tasks.c.owner_id).cte("gone")
_UNCOUNTED = (
    update(task_counts)
    .where(task_counts.c.owner_id == _GONE.c.owner_id)
    .values(n=task_counts.c.n - _ONE)
    .cte("uncounted")
)
DELETE_COUNTED_TASK: Select[Any] = (
    select(func.count().label("deleted")).select_from(_GONE).add_cte(_UNCOUNTED)
)
# SQLite: the same two moves as statements of their own, run in the transaction of the write.
COUNT_ONE_MORE_SQLITE: Insert = _count_one_more(sqlite.insert)
COUNT_ONE_LESS: Update = (
    update(task_counts)
    .where(task_counts.c.owner_id == bindparam("where_owner_id"))
    .values(n=task_counts.c.n - _ONE)
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
    """The task of a row of `SELECT_TASK` or a page statement (ids as text)."""
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


def like_pattern(q: str) -> str:
    """`%needle%` for LIKE ... ESCAPE '/', the folded needle's wildcards taken literally."""
    needle = fold_for_search(q).replace("/", "//").replace("%", "/%").replace("_", "/_")
    return f"%{needle}%"


# --- list pages ----------------------------------------------------------------------------------

# A page statement's shape: the sort and the names of the parameters it takes (in the order
# `page_parameters` adds them). Everything that changes the SQL text, nothing that only changes
# values.
type PageShape = tuple[TaskSort, tuple[str, ...]]


def page_parameters(owner_id: str, query: TaskQuery, limit: int) -> dict[str, Any]:
    """The bound values of `query`'s page statement; which names are present is its shape."""
    wanted, after = query.filter, query.after
    params: dict[str, Any] = {"owner_id": owner_id, "limit": limit}
    if wanted.status is not None:
        params["status"] = wanted.status.value
    if wanted.priority is not None:
        params["priority"] = wanted.priority
    if wanted.labels:
        params["labels"] = list(wanted.labels)
        params["label_count"] = len(wanted.labels)
    if wanted.due_after is not None:
        params["due_after"] = wanted.due_after
    if wanted.due_before is not None:
        params["due_before"] = wanted.due_before
    if wanted.q is not None:
        params["q"] = like_pattern(wanted.q)
    if after is not None:
        if after.value is not None:
            params["after_value"] = after.value
        params["after_id"] = after.id
    return params


def _has_all_labels_postgresql() -> ColumnElement[bool]:
    return tasks.c.labels.contains(bindparam("labels", type_=tasks.c.labels.type))


def _has_all_labels_sqlite() -> ColumnElement[bool]:
    # Task labels are distinct, so counting the wanted ones among them tells "all present".
    each = func.json_each(tasks.c.labels).table_valued("value")
    wanted = bindparam("labels", type_=String(), expanding=True)
    found = select(func.count()).select_from(each).where(each.c.value.in_(wanted))
    return found.scalar_subquery() == bindparam("label_count", type_=Integer())


def _after(sort: TaskSort, names: tuple[str, ...]) -> ColumnElement[bool]:
    """Rows strictly after the position (`after_value`, `after_id`) in `sort` order; without
    `after_value` the position is a NULL due_at (see domain.task_queries)."""
    column = _SORT_COLUMNS[sort.field]
    task_id = bindparam("after_id", type_=tasks.c.id.type)
    if "after_value" not in names:
        if sort.descending:
            return or_(column.is_not(None), tasks.c.id < task_id)
        return and_(column.is_(None), tasks.c.id > task_id)
    position = tuple_(bindparam("after_value", type_=column.type), task_id)
    if sort.descending:
        return tuple_(column, tasks.c.id) < position
    after = tuple_(column, tasks.c.id) > position
    return or_(after, column.is_(None)) if sort.field == "due_at" else after


def page_statement(shape: PageShape, *, postgresql: bool) -> Select[Any]:
    """The SELECT of one page shape (see `page_parameters` for the names it binds)."""
    sort, names = shape
    conditions: list[ColumnElement[bool]] = [tasks.c.owner_id == bindparam("owner_id")]
    if "status" in names:
        conditions.append(tasks.c.status == bindparam("status"))
    if "priority" in names:
        conditions.append(tasks.c.priority == bindparam("priority"))
    if "labels" in names:
        has_all = _has_all_labels_postgresql if postgresql else _has_all_labels_sqlite
        conditions.append(has_all())
    if "due_after" in names:
        conditions.append(tasks.c.due_at >= bindparam("due_after", type_=tasks.c.due_at.type))
    if "due_before" in names:
        conditions.append(tasks.c.due_at < bindparam("due_before", type_=tasks.c.due_at.type))
    if "q" in names:
        needle = bindparam("q", type_=Text())
        conditions.append(
            or_(
                tasks.c.title_folded.like(needle, escape="/"),
                tasks.c.description_folded.like(needle, escape="/"),
            )
        )
    if "after_id" in names:
        conditions.append(_after(sort, names))
    return (
        _SELECT_TASKS.where(*conditions)
        .order_by(*_order_by(sort))
        .limit(bindparam("limit", type_=Integer()))
    )


class PageStatements:
    """The page statements of one dialect, each shape built on first use and then kept."""

    def __init__(self, *, postgresql: bool) -> None:
        self._postgresql = postgresql
        self._made: dict[PageShape, Select[Any]] = {}

    def get(self, sort: TaskSort, params: dict[str, Any]) -> Select[Any]:
        shape = (sort, tuple(params))
        statement = self._made.get(shape)
        if statement is None:
            statement = self._made[shape] = page_statement(shape, postgresql=self._postgresql)
        return statement


PAGES_POSTGRESQL = PageStatements(postgresql=True)
PAGES_SQLITE = PageStatements(postgresql=False)


# --- the repository ------------------------------------------------------------------------------


class StatementRunner(Protocol):
    """Runs the statements above on one connection, under its unit of work's transaction rules."""

    async def fetch(self, statement: Executable, params: dict[str, Any]) -> Sequence[Any]:
        """Every row the statement returns."""
        ...

    async def fetch_one(self, statement: Executable, params: dict[str, Any]) -> Any | None:
        """The first row, or None."""
        ...

    async def write(self, statement: Executable, params: dict[str, Any]) -> int:
        """Run an UPDATE or DELETE now; the number of rows it hit."""
        ...

    async def insert(
        self, statement: Executable, params: dict[str, Any], *, refused: Exception | None = None
    ) -> None:
        """Run an INSERT, now or (within the same unit of work) before anything else it runs.

        With `refused`, an INSERT that inserts no row raises it: here, or from whatever runs the
        held insert (a `commit()` that raises it has written nothing)."""
        ...


class SqlTaskRepository:
    def __init__(self, runner: StatementRunner, *, postgresql: bool) -> None:
        self._run = runner
        self._postgresql = postgresql
        self._pages = PAGES_POSTGRESQL if postgresql else PAGES_SQLITE

    async def add(self, task: Task, *, limit: int) -> None:
        row = task_to_row(task)
        if self._postgresql:
            row["max_tasks"] = limit
            await self._run.insert(INSERT_COUNTED_TASK, row, refused=TaskLimitReached(limit))
            return
        counted = {"owner_id": task.owner_id, "max_tasks": limit}
        if await self._run.write(COUNT_ONE_MORE_SQLITE, counted) == 0:
            raise TaskLimitReached(limit)
        await self._run.insert(INSERT_TASK, row)

    async def get(self, owner_id: str, task_id: str) -> Task | None:
        if not is_canonical_uuid(task_id) or not is_canonical_uuid(owner_id):
            return None
        row = await self._run.fetch_one(SELECT_TASK, {"task_id": task_id, "owner_id": owner_id})
        return None if row is None else task_from_row(row)

    async def update(self, task: Task, expected_version: int) -> bool:
        """One conditional UPDATE; True when it hit the row (no read first)."""
        params = task_to_row(task)
        params["where_id"] = params.pop("id")
        params["where_owner_id"] = params.pop("owner_id")
        params["expected_version"] = expected_version
        return await self._run.write(UPDATE_TASK, params) == 1

    async def delete(self, owner_id: str, task_id: str, expected_version: int) -> bool:
        if not is_canonical_uuid(task_id) or not is_canonical_uuid(owner_id):
            return False
        params = {
            "where_id": task_id,
            "where_owner_id": owner_id,
            "expected_version": expected_version,
        }
        if self._postgresql:
            row = await self._run.fetch_one(DELETE_COUNTED_TASK, params)
            return row is not None and row[0] == 1
        if await self._run.write(DELETE_TASK, params) != 1:
            return False
        await self._run.write(COUNT_ONE_LESS, {"where_owner_id": owner_id})
        return True

    async def list_page(self, owner_id: str, query: TaskQuery, *, limit: int) -> list[Task]:
        if not is_canonical_uuid(owner_id):
            return []
        params = page_parameters(owner_id, query, limit)
        rows = await self._run.fetch(self._pages.get(query.sort, params), params)
        return [task_from_row(row) for row in rows]
