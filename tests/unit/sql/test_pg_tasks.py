"""The PostgreSQL task repository's SQL text, without a database: the literal INSERT and UPDATE
follow the table, and every list shape numbers exactly the parameters it is given."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from adapters.sql import pg_tasks
from adapters.sql.pg_tasks import PgTaskUnitOfWork
from adapters.sql.tables import tasks
from adapters.sql.uow import SqlUnitOfWork
from app.container import build_container, close_container
from domain.ports.tasks import CursorPosition, TaskFilter, TaskQuery, TaskSort
from domain.tasks import TaskStatus
from tests.unit.conftest import SettingsFactory

T = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
ID = "0190c1d2-0000-7000-8000-000000000001"
OWNER = "0190c1d2-0000-7000-8000-0000000000ff"


def test_insert_and_update_name_the_columns_in_row_order() -> None:
    assert tuple(tasks.c.keys()) == pg_tasks.ROW_COLUMNS
    inserted = re.search(r"INSERT INTO tasks \(([^)]*)\)", pg_tasks._INSERT)
    assert inserted is not None
    assert tuple(name.strip() for name in inserted.group(1).split(",")) == pg_tasks.ROW_COLUMNS
    assert re.findall(r"\$(\d+)", pg_tasks._INSERT) == [
        str(n) for n in range(1, len(pg_tasks.ROW_COLUMNS) + 1)
    ]
    assigned = re.findall(r"(\w+) = \$(\d+)", pg_tasks._UPDATE.split(" WHERE ")[0])
    assert assigned == [(name, str(n)) for n, name in enumerate(pg_tasks.ROW_COLUMNS, 1) if n > 2]


def _placeholders(sql: str) -> set[int]:
    return {int(n) for n in re.findall(r"\$(\d+)", sql)}


FILTERS = [
    TaskFilter(),
    TaskFilter(status=TaskStatus.DONE),
    TaskFilter(priority=2, labels=("a", "b")),
    TaskFilter(due_after=T, due_before=T, q="x"),
    TaskFilter(
        status=TaskStatus.TODO, priority=1, labels=("a",), due_after=T, due_before=T, q="%_/"
    ),
]


@pytest.mark.parametrize("sort", list(TaskSort), ids=lambda s: s.value)
@pytest.mark.parametrize("wanted", FILTERS)
def test_every_shape_numbers_exactly_its_parameters(sort: TaskSort, wanted: TaskFilter) -> None:
    value = 2 if sort.field == "priority" else T
    positions = [None, CursorPosition(value, ID)]
    if sort.field == "due_at":
        positions.append(CursorPosition(None, ID))
    for position in positions:
        query = TaskQuery(wanted, sort=sort, after=position)
        sql = pg_tasks._page_statement(query)
        args = pg_tasks._page_args(OWNER, query, 51)
        assert _placeholders(sql) == set(range(1, len(args) + 1))
        assert args[0] == OWNER
        assert args[-1] == 51
        assert pg_tasks._page_statement(query) is sql  # the shape's cached text


def test_a_shape_does_not_depend_on_values() -> None:
    one = TaskQuery(TaskFilter(priority=1, q="a"), after=CursorPosition(T, ID))
    other = TaskQuery(
        TaskFilter(priority=4, q="zz"), after=CursorPosition(T.replace(year=2027), OWNER)
    )
    assert pg_tasks._page_statement(one) is pg_tasks._page_statement(other)


def test_like_pattern_takes_wildcards_literally() -> None:
    assert pg_tasks._like_pattern("A%b_c/d\\") == "%a/%b/_c//d\\%"


async def test_postgresql_serves_the_task_use_cases_with_the_asyncpg_unit(
    make_settings: SettingsFactory,
) -> None:
    """Wiring only (no connection is made): tasks on PgTaskUnitOfWork with the shared slots,
    identity on SqlUnitOfWork; SQLite keeps SqlUnitOfWork for everything."""
    settings = make_settings(DATABASE_URL="postgresql+asyncpg://taskhub@127.0.0.1:1/taskhub")
    container = build_container(settings)
    try:
        for name in ("task_uow_factory", "task_read_uow_factory"):
            uow = getattr(container, name)()()
            assert isinstance(uow, PgTaskUnitOfWork)
            assert uow._slots is container.connection_slots()
        assert isinstance(container.uow_factory()(), SqlUnitOfWork)
    finally:
        await close_container(container)
    sqlite = build_container(make_settings())
    try:
        assert isinstance(sqlite.task_uow_factory()(), SqlUnitOfWork)
        assert isinstance(sqlite.task_read_uow_factory()(), SqlUnitOfWork)
    finally:
        await close_container(sqlite)
