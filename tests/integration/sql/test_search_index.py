"""`q` on PostgreSQL: served by the trigram indexes on a table big enough for the planner to want
them, with the memory twin's answers, and bounded by the statement timeout like every query."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.sql.compiled import positional_text
from adapters.sql.tables import users
from adapters.sql.tasks import PAGES_POSTGRESQL, page_parameters
from adapters.sql.uow import SqlUnitOfWork
from domain.errors import Unavailable
from domain.task_queries import TaskFilter, TaskQuery
from tests.integration.sql.conftest import EngineMaker, UowFactory, add_user, inbox_id, reader

POSTGRESQL_ONLY = True  # conftest drops this module's SQLite runs
# PgBouncer mode sets no statement_timeout at connect (the database role carries it there).
DIRECT_ONLY = {"test_a_q_query_is_cut_off_by_the_statement_timeout"}

ROWS = 20_000
ZEBRAS = (7, 7_001, 15_000)  # titles that hold "Zebra"
OKAPI = 12_345  # the one description that holds "okapi"

# Titles and descriptions of one owner, their folded forms as the mapper writes them
# (lower-case ASCII folds to itself).
_FILL = text(
    """
    INSERT INTO tasks (id, owner_id, project_id, title, description, status, priority, labels,
                       created_at, updated_at, version, title_folded, description_folded)
    SELECT gen_random_uuid(), :owner, :project, t.title, t.description, 'todo', 1 + g % 4,
           ARRAY[]::text[], now() - g * interval '1 second', now(), 1, lower(t.title),
           lower(t.description)
    FROM generate_series(1, :rows) AS g,
         LATERAL (SELECT
            CASE WHEN g = ANY(:zebras) THEN 'Zebra crossing ' || g ELSE 'task number ' || g END
                AS title,
            CASE WHEN g = :okapi THEN 'an okapi ' || md5(g::text)
                 WHEN g % 3 = 0 THEN NULL
                 ELSE 'details ' || md5(g::text) END AS description) AS t
    """
)


@pytest.fixture(scope="module")
async def crowded(engine: AsyncEngine, new_uow: UowFactory) -> AsyncIterator[str]:
    owner = await add_user(new_uow)
    async with engine.begin() as conn:
        params = {
            "owner": owner.id,
            "project": inbox_id(owner.id),
            "rows": ROWS,
            "zebras": list(ZEBRAS),
            "okapi": OKAPI,
        }
        await conn.execute(_FILL, params)
    async with engine.connect() as conn:
        # What autovacuum does in production: move the GIN pending lists into the indexes (the
        # planner prices an unmerged list as a full read) and gather statistics.
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("VACUUM ANALYZE tasks"))
    yield owner.id
    async with engine.begin() as conn:
        await conn.execute(users.delete().where(users.c.id == owner.id))  # tasks cascade


def _scanned(node: dict[str, Any]) -> list[tuple[str, str]]:
    """(node type, relation) of every scan in a JSON plan tree."""
    found = [(node["Node Type"], node["Relation Name"])] if "Relation Name" in node else []
    for child in node.get("Plans", []):
        found += _scanned(child)
    return found


async def _plan(engine: AsyncEngine, owner_id: str, query: TaskQuery) -> str:
    """EXPLAIN of the statement the raw path sends for `query`, with its values."""
    params = page_parameters(reader(owner_id), query, query.limit + 1)
    statement = positional_text(PAGES_POSTGRESQL.get(query.sort, params), engine.dialect)
    async with engine.connect() as conn:
        raw: Any = await conn.get_raw_connection()
        plan = await raw.driver_connection.fetchval(
            "EXPLAIN (FORMAT JSON) " + statement.sql, *statement.arguments(params)
        )
    # SQLAlchemy's asyncpg set-up decodes json itself; a bare connection gives text.
    return json.dumps(json.loads(plan) if isinstance(plan, str) else plan)


@pytest.mark.parametrize(("needle", "found"), [("zebra", len(ZEBRAS)), ("OKAPI", 1)])
async def test_q_is_served_by_the_trigram_indexes(
    engine: AsyncEngine, crowded: str, needle: str, found: int
) -> None:
    query = TaskQuery(TaskFilter(q=needle))
    plan = await _plan(engine, crowded, query)
    # Title OR description: one bitmap per index, or'ed; never a scan of the owner's tasks.
    # (A small membership table may be read whole: the planner's choice, and cheap.)
    assert "ix_tasks_title_folded_trgm" in plan
    assert "ix_tasks_description_folded_trgm" in plan
    assert ("Seq Scan", "tasks") not in _scanned(json.loads(plan)[0]["Plan"])
    assert "ix_tasks_project_id_" not in plan
    async with SqlUnitOfWork(engine, read_only=True, raw=True) as uow:
        page = await uow.tasks.list_page(reader(crowded), query, limit=50)
    assert len(page) == found
    assert all(needle.casefold() in f"{t.title} {t.description}".casefold() for t in page)


async def test_a_q_query_is_cut_off_by_the_statement_timeout(
    make_engine: EngineMaker, engine: AsyncEngine, crowded: str
) -> None:
    timed = make_engine(pool_size=1, max_overflow=0, statement_timeout_ms=300)
    async with engine.connect() as blocker:
        # Holds the table so the search cannot finish, however fast it would be.
        await blocker.execute(text("LOCK TABLE tasks IN ACCESS EXCLUSIVE MODE"))
        with pytest.raises(Unavailable) as raised:
            async with SqlUnitOfWork(timed, read_only=True, raw=True) as uow:
                await uow.tasks.list_page(
                    reader(crowded), TaskQuery(TaskFilter(q="zebra")), limit=5
                )
        await blocker.rollback()
    assert type(raised.value.__cause__).__name__ == "QueryCanceledError"
