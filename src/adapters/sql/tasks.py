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

The per-owner cap: `task_counts` holds each owner's (creator's) number of tasks, moved by the
statement that inserts or deletes tasks. On PostgreSQL that is one statement each (data-modifying
CTEs): the counter is raised only while below the cap (and, for a create as a member, only when
the membership check passed), and the task is inserted only when it was; its upsert locks the
owner's counter row, so concurrent creates at the cap queue there and the later one sees the
raised count. A delete lowers each owner's counter by the tasks of the removed subtree. SQLite
cannot modify data in a CTE: it runs the counter's statement and the task's one after the other in
the same transaction (its writers are serialised anyway).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, Protocol

import msgspec
from sqlalchemy import (
    ARRAY,
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
    any_,
    bindparam,
    cast,
    delete,
    func,
    insert,
    literal_column,
    null,
    or_,
    select,
    true,
    tuple_,
    update,
)
from sqlalchemy import column as column_
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.dialects import sqlite
from sqlalchemy.dialects.postgresql import JSON

from adapters.sql.events import (
    SqlEventLog,
    created_event_cte,
    created_event_params,
    created_events_params,
)
from adapters.sql.tables import project_members, projects, task_counts, tasks
from adapters.sql.types import is_canonical_uuid
from domain.events import Event
from domain.ports.tasks import Readable, TaskInProject, TrashedInProject
from domain.projects import Membership, Role
from domain.task_queries import NONE, TaskQuery, TaskSort
from domain.tasks import Task, TaskLimitReached, TaskStatus, fold_for_search
from domain.trash import TrashedTask, TrashPosition

# Task rows as JSON for a many-row insert (datetimes as RFC 3339, which PostgreSQL reads).
_json_rows = msgspec.json.Encoder()

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
    cast(tasks.c.project_id, Text).label("project_id_text"),
    cast(tasks.c.parent_id, Text).label("parent_id_text"),
    cast(tasks.c.assignee_id, Text).label("assignee_id_text"),
)
_SELECT_TASKS = select(*_TASK_COLUMNS)
TASK_COLUMNS = _TASK_COLUMNS  # what `task_from_row` reads, for other statements of whole tasks
_TASK_COUNT = len(_TASK_COLUMNS)
# Every column a task's own data fills (`task_to_row`); the trash columns are only ever set by
# the trash statements below (a new task is live, an update keeps them as they are).
_TRASH_KEYS = frozenset({"deleted_at", "trashed_with"})
_DATA_COLUMNS = tuple(column for column in tasks.c if column.key not in _TRASH_KEYS)
_LIVE = tasks.c.deleted_at.is_(None)
_TRASHED = tasks.c.deleted_at.is_not(None)

INSERT_TASK: Insert = insert(tasks).values(
    {column: bindparam(column.key) for column in _DATA_COLUMNS}
)
# The task with the asking user's membership in its project (NULL role: not a member), so the
# access policy decides on one row.
SELECT_TASK: Select[Any] = (
    select(*_TASK_COLUMNS, project_members.c.role, project_members.c.added_at)
    .select_from(
        tasks.outerjoin(
            project_members,
            and_(
                project_members.c.project_id == tasks.c.project_id,
                project_members.c.user_id == bindparam("user_id"),
            ),
        )
    )
    .where(tasks.c.id == bindparam("task_id"), _LIVE)
)


_ONE = literal_column("1", Integer())


def _member_project(*, inbox: bool, postgresql: bool) -> Select[Any]:
    """The project (`in_project`, or with `inbox` the member's inbox) where `member_id` holds
    one of `roles`: one row, or none."""
    members = project_members.c
    member = bindparam("member_id", type_=members.user_id.type)
    conditions = [members.user_id == member]
    if postgresql:
        conditions.append(members.role == any_(bindparam("roles", type_=ARRAY(Text()))))
    else:
        conditions.append(members.role.in_(bindparam("roles", expanding=True)))
    if inbox:
        own_inbox = select(projects.c.id).where(projects.c.inbox_owner_id == member)
        conditions.append(members.project_id == own_inbox.scalar_subquery())
    else:
        project = bindparam("in_project", type_=members.project_id.type)
        conditions.append(members.project_id == project)
    return select(members.project_id.label("project_id")).where(*conditions)


def _values(column: Any) -> Any:
    return cast(bindparam(f"v_{column.key}", type_=column.type), column.type)


def _insert_as_member(*, inbox: bool) -> Insert:
    """SQLite: INSERT ... SELECT of a task row that yields a row only when `member_id` holds one
    of `roles` in the project; RETURNING the project's id. Values are bound as `v_<column>` and
    cast to their column's type."""
    target = _member_project(inbox=inbox, postgresql=False).subquery("target")
    values = [
        target.c.project_id if column.key == "project_id" else _values(column)
        for column in _DATA_COLUMNS
    ]
    return (
        insert(tasks)
        .from_select([column.key for column in _DATA_COLUMNS], select(*values).select_from(target))
        .returning(cast(tasks.c.project_id, Text))
    )


def _insert_counted_as_member(*, inbox: bool, recorded: bool = False, many: bool = False) -> Insert:
    """PostgreSQL: the same insert as one statement with the owner's counter: the counter moves
    only when the membership check found the project and the owner is below `max_tasks`, and
    the task is inserted only when the counter moved. RETURNING the project's id; no row back
    means the membership check or the cap refused it. With `recorded`, the task's created event
    is inserted by the same statement (`adapters.sql.events.created_event_cte`).

    With `many`, the same for `k` tasks of one owner in one project, all or none: the rows come
    from `rows` (a JSON array of task rows, typed by the table's own row type), their events
    from `created_event_cte`'s arrays, and the counter moves by `k` only while that keeps it
    within `max_tasks`."""
    target = _member_project(inbox=inbox, postgresql=True).cte("target")
    owner = _values(tasks.c.owner_id)
    limit = bindparam("max_tasks", type_=Integer())
    k = bindparam("k", type_=Integer()) if many else _ONE
    counted = (
        pg.insert(task_counts)
        .from_select(["owner_id", "n"], select(owner, k).select_from(target).where(k <= limit))
        .on_conflict_do_update(
            index_elements=[task_counts.c.owner_id],
            set_={"n": task_counts.c.n + k},
            where=task_counts.c.n <= limit - k,
        )
        .returning(task_counts.c.n)
        .cte("counted")
    )
    source = target.join(counted, true())
    if many:
        # json, not jsonb: the rows are read once, and json skips building the binary form.
        given = cast(bindparam("rows", type_=Text()), JSON)
        row_type: Any = literal_column(f"NULL::{tasks.name}")
        # Named, not listed, columns: the row type's own names (its order is the database's).
        rows = func.json_populate_recordset(row_type, given).table_valued(
            *(column_(c.key, c.type) for c in _DATA_COLUMNS)
        )
        source = source.join(rows, true())
    values = [
        target.c.project_id
        if column.key == "project_id"
        else (rows.c[column.key] if many else _values(column))
        for column in _DATA_COLUMNS
    ]
    statement = (
        insert(tasks)
        .from_select([column.key for column in _DATA_COLUMNS], select(*values).select_from(source))
        .returning(cast(tasks.c.project_id, Text))
    )
    if recorded:
        # A named project is the one the event was made in; only an inbox is found here.
        event = created_event_cte(target, counted, many=many, found=inbox)
        statement = statement.add_cte(event)
    return statement


# The row locates itself by its own id; every other column but the creator is set.
_KEY_COLUMNS = frozenset({"id", "owner_id"})
_SET_COLUMNS = tuple(column for column in _DATA_COLUMNS if column.key not in _KEY_COLUMNS)
UPDATE_TASK: Update = (
    update(tasks)
    .values({column: bindparam(column.key) for column in _SET_COLUMNS})
    .where(
        tasks.c.id == bindparam("where_id"),
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
    [column.key for column in _DATA_COLUMNS],
    select(*(bindparam(column.key, type_=column.type) for column in _DATA_COLUMNS)).select_from(
        _COUNTED
    ),
)


def _subtree(*, nesting: bool = False) -> Any:
    """The task to delete (`where_id`, created by `where_owner_id`, at `expected_version`) and
    all its descendants, with each one's creator: what the delete removes (subtasks go by the
    parent's foreign key), so each creator's counter can go down by their share."""
    root = (
        select(tasks.c.id, tasks.c.owner_id)
        .where(
            tasks.c.id == bindparam("where_id"),
            tasks.c.owner_id == bindparam("where_owner_id"),
            tasks.c.version == bindparam("expected_version"),
        )
        .cte("subtree", recursive=True, nesting=nesting)
    )
    child = tasks.alias("child")
    return root.union_all(
        select(child.c.id, child.c.owner_id).where(child.c.parent_id == root.c.id)
    )


# PostgreSQL: one statement deletes the subtree and lowers each creator's counter by the tasks
# of theirs it removed; the one row back is how many tasks went (0: nothing matched).
_SUBTREE = _subtree()
_GONE = (
    delete(tasks)
    .where(tasks.c.id.in_(select(_SUBTREE.c.id)))
    .returning(tasks.c.owner_id)
    .cte("gone")
)
_PER_OWNER = (
    select(_GONE.c.owner_id, func.count().label("k")).group_by(_GONE.c.owner_id).cte("per_owner")
)
_UNCOUNTED = (
    update(task_counts)
    .where(task_counts.c.owner_id == _PER_OWNER.c.owner_id)
    .values(n=task_counts.c.n - _PER_OWNER.c.k)
    .cte("uncounted")
)
DELETE_COUNTED_TASK: Select[Any] = (
    select(func.count().label("deleted")).select_from(_GONE).add_cte(_UNCOUNTED)
)
# SQLite: the same moves as statements of their own, run in the transaction of the write: the
# counters first (over the subtree as it stands), then the DELETE.
COUNT_ONE_MORE_SQLITE: Insert = _count_one_more(sqlite.insert)
# Each subquery carries its own WITH, so the statement starts with UPDATE: the SQLite driver
# opens its transaction only before a statement that starts as a write.
_IN_SUBTREE = _subtree(nesting=True)
_OF_OWNER = _subtree(nesting=True)
UNCOUNT_SUBTREE_SQLITE: Update = (
    update(task_counts)
    .where(task_counts.c.owner_id.in_(select(_IN_SUBTREE.c.owner_id)))
    .values(
        n=task_counts.c.n
        - select(func.count())
        .select_from(_OF_OWNER)
        .where(_OF_OWNER.c.owner_id == task_counts.c.owner_id)
        .scalar_subquery()
    )
)

INSERT_AS_MEMBER_POSTGRESQL = {
    inbox: _insert_counted_as_member(inbox=inbox) for inbox in (False, True)
}
# The same, recording the task's created event in the same statement.
INSERT_RECORDED_AS_MEMBER_POSTGRESQL = {
    inbox: _insert_counted_as_member(inbox=inbox, recorded=True) for inbox in (False, True)
}
# The same for several tasks of one owner in one project, with their created events.
INSERT_MANY_RECORDED_AS_MEMBER_POSTGRESQL = {
    inbox: _insert_counted_as_member(inbox=inbox, recorded=True, many=True)
    for inbox in (False, True)
}
# PostgreSQL, read only when a checked insert wrote nothing: the owner's count, when the
# membership check passes (the same parameters as the insert).
COUNT_AS_MEMBER_POSTGRESQL = {
    inbox: select(task_counts.c.n).where(
        task_counts.c.owner_id == _values(tasks.c.owner_id),
        _member_project(inbox=inbox, postgresql=True).exists(),
    )
    for inbox in (False, True)
}
INSERT_AS_MEMBER_SQLITE = {inbox: _insert_as_member(inbox=inbox) for inbox in (False, True)}

_SORT_COLUMNS = {
    "created_at": tasks.c.created_at,
    "updated_at": tasks.c.updated_at,
    "due_at": tasks.c.due_at,
    "priority": tasks.c.priority,
}


def _order_by(
    sort: TaskSort, column: Any = None, task_id: Any = None
) -> tuple[ColumnElement[Any], ...]:
    """ORDER BY of `sort`, on the tasks table (or on the given key and id columns)."""
    column = _SORT_COLUMNS[sort.field] if column is None else column
    task_id = tasks.c.id if task_id is None else task_id
    if sort is TaskSort.DUE_AT:
        return column.asc().nulls_last(), task_id.asc()
    if sort is TaskSort.DUE_AT_DESC:
        return column.desc().nulls_first(), task_id.desc()
    if sort.descending:
        return column.desc(), task_id.desc()
    return column.asc(), task_id.asc()


def _row_in_found_project(task: Task) -> dict[str, Any]:
    """`task`'s row without `project_id`: a statement that sets the project it found."""
    row = task_to_row(task)
    del row["project_id"]
    return row


def task_to_row(task: Task) -> dict[str, Any]:
    """Every column of `task`'s row, including the search columns."""
    description = task.description
    return {
        "id": task.id,
        "owner_id": task.owner_id,
        "project_id": task.project_id,
        "parent_id": task.parent_id,
        "assignee_id": task.assignee_id,
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
    """The task of a row of a page statement, or the first columns of `SELECT_TASK` (ids as
    text)."""
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
        project_id,
        parent_id,
        assignee_id,
    ) = row[:_TASK_COUNT]
    return Task(
        id=task_id,
        owner_id=owner_id,
        project_id=project_id,
        parent_id=parent_id,
        assignee_id=assignee_id,
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


def page_parameters(readable: Readable, query: TaskQuery, limit: int) -> dict[str, Any]:
    """The bound values of `query`'s page statement; which names are present is its shape.
    Ids must be canonical (the repository answers an empty list otherwise)."""
    wanted, after = query.filter, query.after
    params: dict[str, Any] = {
        "user_id": readable.user_id,
        "roles": sorted(role.value for role in readable.roles),
        "limit": limit,
    }
    if readable.only is not None:
        params["only"] = sorted(readable.only)
    if wanted.project_id is not None:
        params["project_id"] = wanted.project_id
    if wanted.assignee_id == NONE:
        params["no_assignee"] = True
    elif wanted.assignee_id is not None:
        params["assignee_id"] = wanted.assignee_id
    if wanted.parent_id == NONE:
        params["no_parent"] = True
    elif wanted.parent_id is not None:
        params["parent_id"] = wanted.parent_id
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


def _readable_projects(names: tuple[str, ...], *, postgresql: bool) -> Select[Any]:
    """The ids of the projects the page may show: the user's memberships with a role that
    may read, narrowed to a restricted key's projects and to the `project_id` filter."""
    members = project_members.c
    if postgresql:
        # Arrays compared with = ANY, so the compiled text has a fixed number of parameters.
        conditions = [members.role == any_(bindparam("roles", type_=ARRAY(Text())))]
        if "only" in names:
            only = bindparam("only", type_=ARRAY(Text()))
            conditions.append(cast(members.project_id, Text) == any_(only))
    else:
        conditions = [members.role.in_(bindparam("roles", expanding=True))]
        if "only" in names:
            conditions.append(members.project_id.in_(bindparam("only", expanding=True)))
    conditions.append(members.user_id == bindparam("user_id", type_=members.user_id.type))
    if "project_id" in names:
        project = bindparam("project_id", type_=members.project_id.type)
        conditions.append(members.project_id == project)
    return select(members.project_id).where(*conditions)


def _task_conditions(
    sort: TaskSort, names: tuple[str, ...], *, postgresql: bool
) -> list[ColumnElement[bool]]:
    """The filter and keyset conditions on the tasks of one page (live tasks only: the
    condition of the partial list indexes)."""
    conditions: list[ColumnElement[bool]] = [_LIVE]
    if "no_assignee" in names:
        conditions.append(tasks.c.assignee_id.is_(None))
    if "assignee_id" in names:
        assignee = bindparam("assignee_id", type_=tasks.c.assignee_id.type)
        conditions.append(tasks.c.assignee_id == assignee)
    if "no_parent" in names:
        conditions.append(tasks.c.parent_id.is_(None))
    if "parent_id" in names:
        conditions.append(tasks.c.parent_id == bindparam("parent_id", type_=tasks.c.parent_id.type))
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
    return conditions


def page_statement(shape: PageShape, *, postgresql: bool) -> Select[Any]:
    """The SELECT of one page shape (see `page_parameters` for the names it binds).

    On PostgreSQL each readable project gives at most `limit` tasks through its slice of the
    (project_id, sort key, id) index (a LATERAL subquery), and the page is the first `limit`
    of those: the work is bounded by projects x limit, however large a project is. SQLite
    (embedded, small) filters on the readable project ids instead.
    """
    sort, names = shape
    readable = _readable_projects(names, postgresql=postgresql)
    conditions = _task_conditions(sort, names, postgresql=postgresql)
    limit = bindparam("limit", type_=Integer())
    if not postgresql:
        return (
            _SELECT_TASKS.where(tasks.c.project_id.in_(readable), *conditions)
            .order_by(*_order_by(sort))
            .limit(limit)
        )
    projects = readable.subquery("readable")
    key = _SORT_COLUMNS[sort.field]
    slice_ = (
        select(*_TASK_COLUMNS, key.label("sort_key"), tasks.c.id.label("sort_id"))
        .where(tasks.c.project_id == projects.c.project_id, *conditions)
        .order_by(*_order_by(sort))
        .limit(limit)
        .lateral("slice")
    )
    return (
        select(*(slice_.c[column.name] for column in _TASK_COLUMNS))
        .select_from(projects.join(slice_, true()))
        .order_by(*_order_by(sort, slice_.c.sort_key, slice_.c.sort_id))
        .limit(limit)
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


# --- the trash -----------------------------------------------------------------------------------

_TRASH_AT = bindparam("trash_at", type_=tasks.c.deleted_at.type)
_TRASH_ROOT = bindparam("trash_root", type_=tasks.c.id.type)
_TRASH_VERSION = bindparam("trash_version", type_=Integer())
_NEXT_VERSION = tasks.c.version + _ONE

# The live task at its version and its live descendants (a descendant trashed earlier stays
# with the task it was trashed with). Nested, so the statement starts with UPDATE.
_live = (
    select(tasks.c.id)
    .where(tasks.c.id == _TRASH_ROOT, tasks.c.version == _TRASH_VERSION, _LIVE)
    .cte("live_subtree", recursive=True, nesting=True)
)
_live_child = tasks.alias("live_child")
_live = _live.union_all(
    select(_live_child.c.id).where(
        _live_child.c.parent_id == _live.c.id, _live_child.c.deleted_at.is_(None)
    )
)
TRASH_SUBTREE: Update = (
    update(tasks)
    .where(tasks.c.id.in_(select(_live.c.id)))
    .values(
        deleted_at=_TRASH_AT, trashed_with=_TRASH_ROOT, version=_NEXT_VERSION, updated_at=_TRASH_AT
    )
    .returning(cast(tasks.c.id, Text))
)
_TRASH_COLUMNS = (
    *_TASK_COLUMNS,
    tasks.c.deleted_at,
    cast(tasks.c.trashed_with, Text).label("trashed_with_text"),
)
SELECT_TRASHED: Select[Any] = (
    select(*_TRASH_COLUMNS, project_members.c.role, project_members.c.added_at)
    .select_from(
        tasks.outerjoin(
            project_members,
            and_(
                project_members.c.project_id == tasks.c.project_id,
                project_members.c.user_id == bindparam("user_id"),
            ),
        )
    )
    .where(tasks.c.id == bindparam("task_id"), _TRASHED)
)
# The tasks trashed with the root, when the root is still in the trash at its version.
_root = tasks.alias("trash_root")
RESTORE_TRASHED: Update = (
    update(tasks)
    .where(
        tasks.c.trashed_with == _TRASH_ROOT,
        _TRASHED,
        select(_root.c.id)
        .where(
            _root.c.id == _TRASH_ROOT,
            _root.c.version == _TRASH_VERSION,
            _root.c.trashed_with == _TRASH_ROOT,
            _root.c.deleted_at.is_not(None),
        )
        .exists(),
    )
    .values(deleted_at=null(), trashed_with=null(), version=_NEXT_VERSION, updated_at=_TRASH_AT)
    .returning(*_TASK_COLUMNS)
)


def trash_page_statement(names: tuple[str, ...], *, postgresql: bool) -> Select[Any]:
    """Trashed tasks of the readable projects (see `_readable_projects` for `only` and
    `project_id`), newest `deleted_at` first, strictly after (`after_deleted_at`, `after_id`)
    when those are named; through the partial (project_id, deleted_at, id) index."""
    conditions: list[ColumnElement[bool]] = [
        tasks.c.project_id.in_(_readable_projects(names, postgresql=postgresql)),
        _TRASHED,
    ]
    if "after_id" in names:
        position = tuple_(
            bindparam("after_deleted_at", type_=tasks.c.deleted_at.type),
            bindparam("after_id", type_=tasks.c.id.type),
        )
        conditions.append(tuple_(tasks.c.deleted_at, tasks.c.id) < position)
    return (
        select(*_TRASH_COLUMNS)
        .where(*conditions)
        .order_by(tasks.c.deleted_at.desc(), tasks.c.id.desc())
        .limit(bindparam("limit", type_=Integer()))
    )


def _purge_victims(*, postgresql: bool) -> Select[Any]:
    """Up to `limit` tasks trashed before `before` with no subtask left, oldest first.
    PostgreSQL locks them here, skipping rows another purge holds: concurrent purges never take
    one task twice nor wait on each other. A parent waits until its subtasks are gone (they
    are trashed with it or before it, so they expire first)."""
    child = tasks.alias("purge_child")
    victims = (
        select(tasks.c.id, tasks.c.owner_id)
        .where(
            _TRASHED,
            tasks.c.deleted_at < bindparam("before", type_=tasks.c.deleted_at.type),
            ~select(child.c.id).where(child.c.parent_id == tasks.c.id).exists(),
        )
        .order_by(tasks.c.deleted_at, tasks.c.id)
        .limit(bindparam("limit", type_=Integer()))
    )
    return victims.with_for_update(skip_locked=True) if postgresql else victims


# PostgreSQL: one statement picks, deletes and uncounts a batch; the rows back are the tasks
# that went (for their events).
_VICTIMS = _purge_victims(postgresql=True).cte("victims")
_PURGED = (
    delete(tasks)
    .where(tasks.c.id.in_(select(_VICTIMS.c.id)))
    .returning(tasks.c.owner_id, *_TASK_COLUMNS)
    .cte("purged")
)
_PURGED_PER_OWNER = (
    select(_PURGED.c.owner_id, func.count().label("k"))
    .group_by(_PURGED.c.owner_id)
    .cte("purged_per_owner")
)
_PURGE_UNCOUNTED = (
    update(task_counts)
    .where(task_counts.c.owner_id == _PURGED_PER_OWNER.c.owner_id)
    .values(n=task_counts.c.n - _PURGED_PER_OWNER.c.k)
    .cte("purge_uncounted")
)
PURGE_TRASH_POSTGRESQL: Select[Any] = select(
    *(_PURGED.c[column.name] for column in _TASK_COLUMNS)
).add_cte(_PURGE_UNCOUNTED)
# SQLite (writers serialised): the counters, then the DELETE, over the same chosen batch.
_BATCH = _purge_victims(postgresql=False).subquery("batch")
UNCOUNT_PURGE_SQLITE: Update = (
    update(task_counts)
    .where(task_counts.c.owner_id.in_(select(_BATCH.c.owner_id)))
    .values(
        n=task_counts.c.n
        - select(func.count())
        .select_from(_BATCH)
        .where(_BATCH.c.owner_id == task_counts.c.owner_id)
        .scalar_subquery()
    )
)
PURGE_BATCH_SQLITE: Select[Any] = select(*_TASK_COLUMNS).where(
    tasks.c.id.in_(select(_purge_victims(postgresql=False).subquery("batch").c.id))
)
PURGE_TRASH_SQLITE: Delete = delete(tasks).where(
    tasks.c.id.in_(select(_purge_victims(postgresql=False).subquery("batch").c.id))
)


class TrashPageStatements:
    """The trash page statements of one dialect, each shape built on first use and then kept."""

    def __init__(self, *, postgresql: bool) -> None:
        self._postgresql = postgresql
        self._made: dict[tuple[str, ...], Select[Any]] = {}

    def get(self, params: dict[str, Any]) -> Select[Any]:
        names = tuple(params)
        statement = self._made.get(names)
        if statement is None:
            statement = self._made[names] = trash_page_statement(names, postgresql=self._postgresql)
        return statement


TRASH_PAGES_POSTGRESQL = TrashPageStatements(postgresql=True)
TRASH_PAGES_SQLITE = TrashPageStatements(postgresql=False)


def trashed_from_row(row: Sequence[Any]) -> TrashedTask:
    deleted_at, trashed_with = row[_TASK_COUNT], row[_TASK_COUNT + 1]
    return TrashedTask(task_from_row(row), deleted_at, trashed_with)


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

    async def write_returning(self, statement: Executable, params: dict[str, Any]) -> Any | None:
        """Run a write with RETURNING now; its first row, or None. As the unit's first
        statement it may run alone, committed by itself."""
        ...


class SqlTaskRepository:
    def __init__(
        self, runner: StatementRunner, *, postgresql: bool, events: SqlEventLog | None = None
    ) -> None:
        self._run = runner
        self._events = events
        self._postgresql = postgresql
        self._pages = PAGES_POSTGRESQL if postgresql else PAGES_SQLITE
        self._as_member = INSERT_AS_MEMBER_POSTGRESQL if postgresql else INSERT_AS_MEMBER_SQLITE
        self._trash_pages = TRASH_PAGES_POSTGRESQL if postgresql else TRASH_PAGES_SQLITE

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
        """One INSERT ... SELECT ... RETURNING: the membership check, the owner's counter (on
        PostgreSQL in the same statement, with the created event) and the write together."""
        if not is_canonical_uuid(user_id) or not (inbox or is_canonical_uuid(task.project_id)):
            return None
        params = {f"v_{k}": v for k, v in _row_in_found_project(task).items()}
        params["member_id"] = user_id
        params["roles"] = sorted(role.value for role in roles)
        if not inbox:
            params["in_project"] = task.project_id
        statement = self._as_member[inbox]
        if self._postgresql:
            params["max_tasks"] = limit
            if event is not None:
                params.update(created_event_params(event))
                statement = INSERT_RECORDED_AS_MEMBER_POSTGRESQL[inbox]
        row = await self._run.write_returning(statement, params)
        retries = 2
        while row is None:
            if not self._postgresql:
                return None
            # Nothing written: either the membership check or the cap refused it.
            count = await self._run.fetch_one(COUNT_AS_MEMBER_POSTGRESQL[inbox], params)
            if count is None:
                return None  # not a writing member
            if count[0] >= limit or retries == 0:
                raise TaskLimitReached(limit)
            retries -= 1  # a concurrent delete freed a place since: try again
            row = await self._run.write_returning(statement, params)
        if not self._postgresql:
            counted = {"owner_id": task.owner_id, "max_tasks": limit}
            if await self._run.write(COUNT_ONE_MORE_SQLITE, counted) == 0:
                raise TaskLimitReached(limit)  # the unit of work is left uncommitted
            if event is not None and self._events is not None:
                await self._events.append(event.placed_in(row[0]))
        elif event is not None and self._events is not None:
            self._events.written += 1  # recorded by the task's own statement
        return replace(task, project_id=row[0])

    async def add_many_as_member(
        self,
        tasks_: Sequence[Task],
        *,
        user_id: str,
        roles: frozenset[Role],
        inbox: bool,
        limit: int,
        events: Sequence[Event],
    ) -> list[Task] | None:
        """PostgreSQL: one INSERT ... SELECT for all of them, with the membership check, the
        owner's counter and their created events, all or none. SQLite has no such statement:
        None, as for a refusal, and the caller adds them one by one."""
        first = tasks_[0]
        if (
            not self._postgresql
            or not is_canonical_uuid(user_id)
            or not (inbox or is_canonical_uuid(first.project_id))
        ):
            return None
        params: dict[str, Any] = {
            "member_id": user_id,
            "roles": sorted(role.value for role in roles),
            "v_owner_id": first.owner_id,
            "k": len(tasks_),
            "max_tasks": limit,
            # Only the JSON text outlives this call's wait for the statement, not the rows.
            "rows": _json_rows.encode([_row_in_found_project(task) for task in tasks_]).decode(),
            **created_events_params(events),
        }
        if not inbox:
            params["in_project"] = first.project_id
        first_row = await self._run.write_returning(
            INSERT_MANY_RECORDED_AS_MEMBER_POSTGRESQL[inbox], params
        )
        if first_row is None:
            return None
        if self._events is not None:
            self._events.written += len(tasks_)  # recorded by the tasks' own statement
        placed_in = first_row[0]
        return [
            task if task.project_id == placed_in else replace(task, project_id=placed_in)
            for task in tasks_
        ]

    async def get(self, task_id: str, user_id: str) -> TaskInProject | None:
        if not is_canonical_uuid(task_id) or not is_canonical_uuid(user_id):
            return None
        row = await self._run.fetch_one(SELECT_TASK, {"task_id": task_id, "user_id": user_id})
        if row is None:
            return None
        task = task_from_row(row)
        role, added_at = row[_TASK_COUNT], row[_TASK_COUNT + 1]
        membership = (
            None if role is None else Membership(task.project_id, user_id, Role(role), added_at)
        )
        return TaskInProject(task, membership)

    async def update(self, task: Task, expected_version: int) -> bool:
        """One conditional UPDATE; True when it hit the row (no read first)."""
        params = task_to_row(task)
        params["where_id"] = params.pop("id")
        del params["owner_id"]
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
            return row is not None and row[0] > 0
        await self._run.write(UNCOUNT_SUBTREE_SQLITE, params)
        return await self._run.write(DELETE_TASK, params) == 1

    async def list_page(self, readable: Readable, query: TaskQuery, *, limit: int) -> list[Task]:
        wanted = query.filter
        ids = [readable.user_id, *(readable.only or ())]
        ids += [i for i in (wanted.project_id, wanted.assignee_id, wanted.parent_id) if i]
        if not all(is_canonical_uuid(i) for i in ids if i != NONE):
            return []  # an id naming nothing matches nothing
        params = page_parameters(readable, query, limit)
        rows = await self._run.fetch(self._pages.get(query.sort, params), params)
        return [task_from_row(row) for row in rows]

    async def trash(self, task_id: str, expected_version: int, at: datetime) -> list[str]:
        if not is_canonical_uuid(task_id):
            return []
        params = {"trash_root": task_id, "trash_version": expected_version, "trash_at": at}
        return [str(row[0]) for row in await self._run.fetch(TRASH_SUBTREE, params)]

    async def get_trashed(self, task_id: str, user_id: str) -> TrashedInProject | None:
        if not is_canonical_uuid(task_id) or not is_canonical_uuid(user_id):
            return None
        row = await self._run.fetch_one(SELECT_TRASHED, {"task_id": task_id, "user_id": user_id})
        if row is None:
            return None
        trashed = trashed_from_row(row)
        role, added_at = row[_TASK_COUNT + 2], row[_TASK_COUNT + 3]
        membership = (
            None
            if role is None
            else Membership(trashed.task.project_id, user_id, Role(role), added_at)
        )
        return TrashedInProject(trashed, membership)

    async def restore(self, task_id: str, expected_version: int, at: datetime) -> list[Task]:
        if not is_canonical_uuid(task_id):
            return []
        params = {"trash_root": task_id, "trash_version": expected_version, "trash_at": at}
        restored = [task_from_row(row) for row in await self._run.fetch(RESTORE_TRASHED, params)]
        restored.sort(key=lambda task: task.id != task_id)  # the task itself first
        return restored

    async def list_trash(
        self, readable: Readable, project_id: str | None, after: TrashPosition | None, *, limit: int
    ) -> list[TrashedTask]:
        ids = [readable.user_id, *(readable.only or ())]
        ids += [i for i in (project_id, after.id if after else None) if i is not None]
        if not all(is_canonical_uuid(i) for i in ids):
            return []  # an id naming nothing matches nothing
        params: dict[str, Any] = {
            "user_id": readable.user_id,
            "roles": sorted(role.value for role in readable.roles),
            "limit": limit,
        }
        if readable.only is not None:
            params["only"] = sorted(readable.only)
        if project_id is not None:
            params["project_id"] = project_id
        if after is not None:
            params["after_deleted_at"] = after.deleted_at
            params["after_id"] = after.id
        rows = await self._run.fetch(self._trash_pages.get(params), params)
        return [trashed_from_row(row) for row in rows]

    async def purge_trash(self, before: datetime, limit: int) -> list[Task]:
        params = {"before": before, "limit": limit}
        if self._postgresql:
            return [
                task_from_row(row) for row in await self._run.fetch(PURGE_TRASH_POSTGRESQL, params)
            ]
        # The write first opens the transaction; the batch read then sees what the delete takes.
        await self._run.write(UNCOUNT_PURGE_SQLITE, params)
        purged = [task_from_row(row) for row in await self._run.fetch(PURGE_BATCH_SQLITE, params)]
        await self._run.write(PURGE_TRASH_SQLITE, params)
        return purged
