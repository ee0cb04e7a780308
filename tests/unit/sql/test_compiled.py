"""The task statements compiled for the raw asyncpg path, without a database: every list shape
compiles to text that takes exactly its parameters, values never change the text, and a statement
that would need SQLAlchemy's per-type processing is refused."""

from __future__ import annotations

import itertools
import re
from datetime import UTC, datetime

import pytest
from sqlalchemy import PickleType, bindparam, select
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect

from adapters.sql.compiled import TextCache, positional_text
from adapters.sql.tables import tasks
from adapters.sql.tasks import (
    DELETE_COUNTED_TASK,
    DELETE_TASK,
    INSERT_AS_MEMBER_POSTGRESQL,
    INSERT_COUNTED_TASK,
    INSERT_TASK,
    PAGES_POSTGRESQL,
    SELECT_TASK,
    UPDATE_TASK,
    like_pattern,
    page_parameters,
    task_to_row,
)
from adapters.sql.uow import SqlUnitOfWork
from app.container import build_container, close_container
from domain.ports.tasks import Readable
from domain.projects import Role
from domain.task_queries import CursorPosition, TaskFilter, TaskQuery, TaskSort
from domain.tasks import TaskStatus
from tests.unit.conftest import SettingsFactory
from tests.unit.tasks.fakes import make_task

T = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
ID = "0190c1d2-0000-7000-8000-000000000001"
OWNER = "0190c1d2-0000-7000-8000-0000000000ff"
PROJECT = "0190c1d2-0000-7000-8000-0000000000aa"
DIALECT = asyncpg_dialect()
EVERYONE = frozenset(Role)
READER = Readable(OWNER, EVERYONE)
# The parameters that change the text without a value of their own (and SQLite's alone).
NO_VALUE = {"label_count", "no_assignee", "no_parent"}


def _numbers(sql: str) -> set[int]:
    return {int(n) for n in re.findall(r"\$(\d+)", sql)}


def _filters() -> list[TaskFilter]:
    """Every combination of present filters (64)."""
    parts = {
        "status": TaskStatus.DONE,
        "priority": 2,
        "labels": ("a", "b"),
        "due_after": T,
        "due_before": T,
        "q": "x%_/",
    }
    combined = [
        TaskFilter(**{name: parts[name] for name in chosen})  # type: ignore[arg-type]
        for size in range(len(parts) + 1)
        for chosen in itertools.combinations(parts, size)
    ]
    placed = [
        TaskFilter(project_id=PROJECT),
        TaskFilter(assignee_id=OWNER),
        TaskFilter(assignee_id="none"),
        TaskFilter(parent_id=ID),
        TaskFilter(parent_id="none"),
        TaskFilter(project_id=PROJECT, assignee_id="none", parent_id=ID, labels=("a",)),
    ]
    return combined + placed


READERS = (READER, Readable(OWNER, EVERYONE, frozenset({PROJECT, ID})))


@pytest.mark.parametrize("sort", list(TaskSort), ids=lambda s: s.value)
def test_every_page_shape_compiles_to_text_taking_exactly_its_parameters(sort: TaskSort) -> None:
    value = 2 if sort.field == "priority" else T
    positions = [None, CursorPosition(value, ID)]
    if sort.field == "due_at":
        positions.append(CursorPosition(None, ID))
    for wanted, position, reader in itertools.product(_filters(), positions, READERS):
        query = TaskQuery(wanted, sort=sort, after=position)
        params = page_parameters(reader, query, 51)
        text = positional_text(PAGES_POSTGRESQL.get(sort, params), DIALECT)
        arguments = text.arguments(params)
        assert _numbers(text.sql) == set(range(1, len(set(text.names)) + 1))
        assert set(text.names) == set(params) - NO_VALUE
        assert arguments[text.names.index("user_id")] == OWNER


def test_values_do_not_change_a_page_statement() -> None:
    one = TaskQuery(TaskFilter(priority=1, q="a"), after=CursorPosition(T, ID))
    other = TaskQuery(
        TaskFilter(priority=4, q="zz"), after=CursorPosition(T.replace(year=2027), OWNER)
    )
    first = PAGES_POSTGRESQL.get(one.sort, page_parameters(READER, one, 5))
    assert PAGES_POSTGRESQL.get(other.sort, page_parameters(READER, other, 9)) is first
    null_due = TaskQuery(sort=TaskSort.DUE_AT, after=CursorPosition(None, ID))
    dated = TaskQuery(sort=TaskSort.DUE_AT, after=CursorPosition(T, ID))
    assert PAGES_POSTGRESQL.get(
        TaskSort.DUE_AT, page_parameters(READER, null_due, 5)
    ) is not PAGES_POSTGRESQL.get(TaskSort.DUE_AT, page_parameters(READER, dated, 5))


# Set only by the trash statements: a new task is live, an update leaves them as they are.
TRASH_COLUMNS = {"deleted_at", "trashed_with"}


def test_the_writes_take_every_column_of_the_row() -> None:
    row = task_to_row(make_task(ID, owner_id=OWNER))
    inserted = positional_text(INSERT_TASK, DIALECT)
    assert inserted.arguments(row) == list(row.values())
    assert set(inserted.names) == set(tasks.c.keys()) - TRASH_COLUMNS
    updated = positional_text(UPDATE_TASK, DIALECT)
    assert set(updated.names) == (set(tasks.c.keys()) - {"id", "owner_id"} - TRASH_COLUMNS) | {
        "where_id",
        "expected_version",
    }
    for statement in (SELECT_TASK, DELETE_TASK):
        text = positional_text(statement, DIALECT)
        assert _numbers(text.sql) == set(range(1, len(text.names) + 1))


def test_the_counted_writes_are_one_statement_each_taking_exactly_their_parameters() -> None:
    """Create and delete on PostgreSQL move the owner's count in the statement itself."""
    row = task_to_row(make_task(ID, owner_id=OWNER))
    created = positional_text(INSERT_COUNTED_TASK, DIALECT)
    assert set(created.names) == (set(tasks.c.keys()) - TRASH_COLUMNS) | {"max_tasks"}
    assert len(created.names) == len(set(created.names))  # the owner id is sent once
    assert _numbers(created.sql) == set(range(1, len(created.names) + 1))
    arguments = created.arguments({**row, "max_tasks": 7})
    assert arguments[created.names.index("owner_id")] == OWNER
    assert arguments[created.names.index("max_tasks")] == 7
    assert created.sql.startswith("WITH counted AS")
    assert "ON CONFLICT (owner_id) DO UPDATE" in created.sql
    assert "WHERE task_counts.n < $" in created.sql
    deleted = positional_text(DELETE_COUNTED_TASK, DIALECT)
    assert set(deleted.names) == {"where_id", "where_owner_id", "expected_version"}
    assert _numbers(deleted.sql) == set(range(1, len(deleted.names) + 1))
    assert "UPDATE task_counts" in deleted.sql


def test_the_checked_insert_takes_every_column_but_the_project_and_counts() -> None:
    row = task_to_row(make_task(ID, owner_id=OWNER))
    for inbox, where in ((False, {"in_project"}), (True, set())):
        text = positional_text(INSERT_AS_MEMBER_POSTGRESQL[inbox], DIALECT)
        expected = {f"v_{k}" for k in row if k != "project_id"} | {"member_id", "roles"} | where
        expected |= {"max_tasks"}  # the owner's counter moves in the same statement
        assert set(text.names) == expected
        assert _numbers(text.sql) == set(range(1, len(set(text.names)) + 1))
        assert "RETURNING" in text.sql
        assert text.sql.startswith("WITH target AS")
        assert "ON CONFLICT (owner_id) DO UPDATE" in text.sql


def test_a_statement_needing_sqlalchemy_processing_is_refused() -> None:
    with pytest.raises(ValueError, match="result processing"):
        positional_text(select(tasks.c.id), DIALECT)  # uuid -> str happens in SQLAlchemy
    pickled = bindparam("blob", type_=PickleType())
    with pytest.raises(ValueError, match="bind processing"):
        positional_text(select(tasks.c.title).where(tasks.c.title == pickled), DIALECT)


def test_the_text_cache_compiles_each_statement_once() -> None:
    cache = TextCache(DIALECT)
    assert cache.get(SELECT_TASK) is cache.get(SELECT_TASK)
    assert cache.get(SELECT_TASK) is not cache.get(DELETE_TASK)


def test_like_pattern_takes_wildcards_literally() -> None:
    assert like_pattern("A%b_c/d\\") == "%a/%b/_c//d\\%"


async def test_postgresql_serves_the_task_use_cases_in_the_raw_mode(
    make_settings: SettingsFactory,
) -> None:
    """Wiring only (no connection is made): tasks on the raw mode with the shared slots,
    identity through SQLAlchemy; SQLite runs everything through SQLAlchemy."""
    settings = make_settings(DATABASE_URL="postgresql+asyncpg://taskhub@127.0.0.1:1/taskhub")
    container = build_container(settings)
    try:
        for name in ("task_uow_factory", "task_read_uow_factory"):
            uow = getattr(container, name)()()
            assert isinstance(uow, SqlUnitOfWork)
            assert uow._raw
            assert uow._slots is container.connection_slots()
        identity = container.uow_factory()()
        assert isinstance(identity, SqlUnitOfWork)
        assert not identity._raw
    finally:
        await close_container(container)
    sqlite = build_container(make_settings())
    try:
        for name in ("task_uow_factory", "task_read_uow_factory"):
            uow = getattr(sqlite, name)()()
            assert isinstance(uow, SqlUnitOfWork)
            assert not uow._raw
        with pytest.raises(ValueError, match="PostgreSQL"):
            SqlUnitOfWork(sqlite.engine(), raw=True)  # type: ignore[arg-type]
    finally:
        await close_container(sqlite)
