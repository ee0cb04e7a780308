"""The task list stays one indexed query at scale: with a million tasks on PostgreSQL, the page
statement of every common order (and of the new filters, and of a next page) reads each
readable project's slice of its (project_id, sort key, id) index and never scans the table.

The reader is a member of three projects: a crowded shared one (most of the rows), their
inbox and a small one; the rest of the rows sit in projects they cannot read. The rows are made
with one INSERT ... SELECT over generate_series, in a schema of this module's own (the GIN
indexes of labels and `q` are dropped there: they do not serve these orders and would only slow
the load).
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.sql.compiled import positional_text
from adapters.sql.tables import project_members, projects, users
from adapters.sql.tasks import PAGES_POSTGRESQL, page_parameters
from domain.ports.tasks import Readable
from domain.projects import Role
from domain.task_queries import CursorPosition, TaskFilter, TaskQuery, TaskSort
from tests.integration.sql.conftest import Database, _postgres_engine

POSTGRESQL_ONLY = True
DIRECT_ONLY = {"test_no_list_scans_the_tasks_table"}

ROWS = int(os.environ.get("TEST_LIST_PLAN_ROWS", "1000000"))
READER = "0190f5a0-0000-7000-8000-00000000a001"
OTHER = "0190f5a0-0000-7000-8000-00000000a002"
CROWDED = "0190f5a0-0000-7000-8000-00000000b001"  # 80 % of the rows, the reader edits
INBOX = "0190f5a0-0000-7000-8000-00000000b002"  # the reader's own, 1 %
SMALL = "0190f5a0-0000-7000-8000-00000000b003"  # the reader views it, 1 %
UNREAD = [f"0190f5a0-0000-7000-8000-0000000c{n:04x}" for n in range(18)]  # 1 % each

_SEED = text(
    """
    INSERT INTO tasks (id, owner_id, project_id, parent_id, assignee_id, title, description,
                       status, priority, labels, due_at, completed_at, created_at, updated_at,
                       version, title_folded, description_folded)
    SELECT gen_random_uuid(), CAST(:other AS uuid),
           CASE WHEN g % 100 < 80 THEN CAST(:crowded AS uuid)
                WHEN g % 100 = 80 THEN CAST(:inbox AS uuid)
                WHEN g % 100 = 81 THEN CAST(:small AS uuid)
                ELSE CAST((CAST(:unread AS text[]))[1 + g % 18] AS uuid) END,
           NULL,
           CASE WHEN g % 3 = 0 THEN CAST(:reader AS uuid) END,
           'task ' || g, NULL, 'todo', 1 + g % 4, ARRAY[]::text[],
           CASE WHEN g % 2 = 0 THEN now() + (g % 1000) * interval '1 hour' END, NULL,
           now() - g * interval '1 second', now() - (g % 5000) * interval '1 minute', 1,
           'task ' || g, NULL
    FROM generate_series(1, :rows) AS g
    """
)


@pytest.fixture(scope="module")
async def crowded(database: Database) -> AsyncIterator[AsyncEngine]:
    if database.kind != "postgresql":
        pytest.skip("PostgreSQL only")
    async for engine in _postgres_engine(database.url):
        async with engine.begin() as conn:
            for index in (
                "ix_tasks_labels",
                "ix_tasks_title_folded_trgm",
                "ix_tasks_description_folded_trgm",
            ):
                await conn.execute(text(f"DROP INDEX {index}"))
            now = datetime(2026, 1, 1, tzinfo=UTC)
            await conn.execute(
                insert(users),
                [
                    {
                        "id": user,
                        "email": f"{user}@example.com",
                        "email_key": f"{user}@example.com",
                        "password_hash": "h",
                        "created_at": now,
                    }
                    for user in (READER, OTHER)
                ],
            )
            places = [
                (CROWDED, None, READER, "editor"),
                (INBOX, READER, READER, "owner"),
                (SMALL, None, READER, "viewer"),
                *((p, None, OTHER, "owner") for p in UNREAD),
            ]
            await conn.execute(
                insert(projects),
                [
                    {
                        "id": project_id,
                        "name": "P",
                        "inbox": inbox_owner is not None,
                        "inbox_owner_id": inbox_owner,
                        "created_at": now,
                        "updated_at": now,
                        "version": 1,
                    }
                    for project_id, inbox_owner, _, _ in places
                ],
            )
            await conn.execute(
                insert(project_members),
                [
                    {"project_id": p, "user_id": member, "role": role, "added_at": now}
                    for p, _, member, role in places
                ],
            )
            await conn.execute(
                _SEED,
                {
                    "other": OTHER,
                    "reader": READER,
                    "crowded": CROWDED,
                    "inbox": INBOX,
                    "small": SMALL,
                    "unread": UNREAD,
                    "rows": ROWS,
                },
            )
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            # This schema's tables only (a bare VACUUM would analyze other tests' schemas too).
            await conn.execute(text("VACUUM ANALYZE tasks, projects, project_members"))
        yield engine


def _nodes(plan: Any) -> list[dict[str, Any]]:
    """Every node of an EXPLAIN (FORMAT JSON) plan."""
    found: list[dict[str, Any]] = []
    stack = [plan[0]["Plan"]]
    while stack:
        node = stack.pop()
        found.append(node)
        stack.extend(node.get("Plans", ()))
    return found


async def _explain(engine: AsyncEngine, readable: Readable, query: TaskQuery) -> Any:
    params = page_parameters(readable, query, query.limit + 1)
    statement = positional_text(PAGES_POSTGRESQL.get(query.sort, params), engine.dialect)
    async with engine.connect() as conn:
        raw: Any = await conn.get_raw_connection()
        plan = await raw.driver_connection.fetchval(
            "EXPLAIN (ANALYZE, FORMAT JSON) " + statement.sql, *statement.arguments(params)
        )
    return json.loads(plan) if isinstance(plan, str) else plan


EVERY_ROLE = frozenset(Role)
QUERIES = {
    "-created_at": TaskQuery(),
    "created_at": TaskQuery(sort=TaskSort.CREATED_AT),
    "-updated_at": TaskQuery(sort=TaskSort.UPDATED_AT_DESC),
    "due_at": TaskQuery(sort=TaskSort.DUE_AT),
    "-priority": TaskQuery(sort=TaskSort.PRIORITY_DESC),
    "next page": TaskQuery(),  # after the 1000th task of the crowded project, below
    "project_id": TaskQuery(TaskFilter(project_id=CROWDED)),
    "assignee_id=me": TaskQuery(TaskFilter(assignee_id=READER)),
    "parent_id=none": TaskQuery(TaskFilter(parent_id="none"), sort=TaskSort.DUE_AT_DESC),
}


@pytest.mark.parametrize("name", list(QUERIES))
async def test_no_list_scans_the_tasks_table(crowded: AsyncEngine, name: str) -> None:
    query = QUERIES[name]
    if name == "next page":
        async with crowded.connect() as conn:
            row = (
                await conn.execute(
                    text(
                        "SELECT created_at, CAST(id AS text) FROM tasks WHERE project_id = :p "
                        "ORDER BY created_at DESC, id DESC OFFSET 1000 LIMIT 1"
                    ),
                    {"p": CROWDED},
                )
            ).one()
        query = TaskQuery(after=CursorPosition(row[0], row[1]))
    readable = Readable(READER, EVERY_ROLE)
    if name == "project_id":
        readable = Readable(READER, EVERY_ROLE, frozenset({CROWDED, SMALL}))  # a restricted key
    plan = await _explain(crowded, readable, query)
    nodes = _nodes(plan)
    on_tasks = [n for n in nodes if n.get("Relation Name") == "tasks"]
    assert on_tasks, "the plan reads no tasks"
    assert all(n["Node Type"] != "Seq Scan" for n in on_tasks), json.dumps(plan)
    assert all(n.get("Index Name", "").startswith("ix_tasks_project_id_") for n in on_tasks)
    # Bounded work: no project gives more rows than a page.
    assert all(n["Actual Rows"] <= query.limit + 1 for n in on_tasks), json.dumps(plan)
    print(f"{name}: {plan[0]['Execution Time']:.2f} ms")
