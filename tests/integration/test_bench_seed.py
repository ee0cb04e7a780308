"""The bench's seeding writes tasks straight into PostgreSQL: it keeps `task_counts` exact too,
so the cap a bench run meets is the one its data says."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from alembic import command
from sqlalchemy.engine import make_url

from bench.seed import (
    create_shared_project,
    delete_population,
    reset_tasks,
    seed_population,
    seed_tasks,
)
from tests.integration.pgbouncer import alembic_config
from tests.integration.scale.processes import fresh_database


async def _counts(dsn: str, owner_id: str) -> tuple[int | None, int]:
    connection = await asyncpg.connect(dsn)
    try:
        owner = uuid.UUID(owner_id)
        n = await connection.fetchval("SELECT n FROM task_counts WHERE owner_id = $1", owner)
        held = await connection.fetchval("SELECT count(*) FROM tasks WHERE owner_id = $1", owner)
    finally:
        await connection.close()
    return n, held


async def _seed_run_and_reset(dsn: str, owner_id: str) -> None:
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(
            "INSERT INTO users (id, email, email_key, password_hash, created_at) "
            "VALUES ($1, 'bench@example.com', 'bench@example.com', 'h', now())",
            uuid.UUID(owner_id),
        )
        # Sign-up gives every user an inbox, where the seed puts the tasks.
        inbox = uuid.uuid4()
        await connection.execute(
            "INSERT INTO projects (id, name, inbox, inbox_owner_id, created_at, updated_at, "
            "version) VALUES ($1, 'Inbox', true, $2, now(), now(), 1)",
            inbox,
            uuid.UUID(owner_id),
        )
        await connection.execute(
            "INSERT INTO project_members (project_id, user_id, role, added_at) "
            "VALUES ($1, $2, 'owner', now())",
            inbox,
            uuid.UUID(owner_id),
        )
    finally:
        await connection.close()
    ids, cutoff = await seed_tasks(dsn, owner_id, 40)
    assert len(ids) == 40
    assert await _counts(dsn, owner_id) == (40, 40)

    # A run adds tasks (here as the ceiling app does, straight into the table), then resets.
    connection = await asyncpg.connect(dsn)
    try:
        for _ in range(3):
            await connection.execute(
                "INSERT INTO tasks (id, owner_id, project_id, title, status, priority, labels, "
                "created_at, updated_at, version, title_folded) "
                "VALUES ($1, $2, $4, 't', 'todo', 1, '{}', $3, $3, 1, 't')",
                uuid.uuid4(),
                uuid.UUID(owner_id),
                datetime.now(UTC),
                inbox,
            )
    finally:
        await connection.close()
    assert await reset_tasks(dsn, owner_id, cutoff) == 3
    assert await _counts(dsn, owner_id) == (40, 40)
    await seed_tasks(dsn, owner_id, 5)  # seeding again adds to what is there
    assert await _counts(dsn, owner_id) == (45, 45)


async def _user(connection: Any, email: str) -> str:
    user = uuid.uuid4()
    await connection.execute(
        "INSERT INTO users (id, email, email_key, password_hash, created_at) "
        "VALUES ($1, $2, $3, 'h', now())",
        user,
        email,
        email,
    )
    return str(user)


async def _seed_a_shared_project(dsn: str) -> None:
    connection = await asyncpg.connect(dsn)
    try:
        owner = await _user(connection, "owner@example.com")
        members = [await _user(connection, f"m{n}@example.com") for n in range(4)]
    finally:
        await connection.close()
    project = await create_shared_project(dsn, owner, members)
    ids, _ = await seed_tasks(dsn, owner, 30, project)
    assert len(ids) == 30
    assert await _counts(dsn, owner) == (30, 30)
    connection = await asyncpg.connect(dsn)
    try:
        row = await connection.fetchrow(
            "SELECT inbox, inbox_owner_id FROM projects WHERE id = $1", uuid.UUID(project)
        )
        roles = await connection.fetch(
            "SELECT user_id, role FROM project_members WHERE project_id = $1", uuid.UUID(project)
        )
        in_project = await connection.fetchval(
            "SELECT count(*) FROM tasks WHERE project_id = $1 AND owner_id = $2",
            uuid.UUID(project),
            uuid.UUID(owner),
        )
    finally:
        await connection.close()
    assert (row["inbox"], row["inbox_owner_id"]) == (False, None)
    assert {str(r["user_id"]): r["role"] for r in roles} == {
        owner: "owner",
        **dict.fromkeys(members, "editor"),
    }
    assert in_project == 30


def test_seeding_into_a_shared_project_makes_members_and_keeps_the_count(
    postgres_url: str,
) -> None:
    with fresh_database(postgres_url) as url:
        command.upgrade(alembic_config(url), "head")
        dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        asyncio.run(_seed_a_shared_project(dsn))


def test_seeding_and_resetting_keep_the_task_count_exact(postgres_url: str) -> None:
    with fresh_database(postgres_url) as url:
        command.upgrade(alembic_config(url), "head")
        dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        asyncio.run(_seed_run_and_reset(dsn, str(uuid.uuid4())))


async def _populate_and_remove(dsn: str) -> None:
    users = await seed_population(dsn, 7, 100, tag="pop", members=5)
    assert len(users) == 7
    connection = await asyncpg.connect(dsn)
    try:
        counts = await connection.fetch(
            "SELECT c.n, (SELECT count(*) FROM tasks t WHERE t.owner_id = c.owner_id) AS held "
            "FROM task_counts c"
        )
        shared = await connection.fetch(
            "SELECT p.id, count(*) AS members, "
            "count(*) FILTER (WHERE m.role = 'owner') AS owners FROM projects p "
            "JOIN project_members m ON m.project_id = p.id WHERE NOT p.inbox GROUP BY p.id"
        )
        inboxes = await connection.fetchval(
            "SELECT count(*) FROM projects WHERE inbox AND inbox_owner_id IS NOT NULL"
        )
        outside = await connection.fetchval(
            "SELECT count(*) FROM tasks t WHERE NOT EXISTS (SELECT 1 FROM project_members m "
            "WHERE m.project_id = t.project_id AND m.user_id = t.owner_id)"
        )
    finally:
        await connection.close()
    assert sorted(r["n"] for r in counts) == [14, 14, 14, 14, 14, 15, 15]
    assert all(r["n"] == r["held"] for r in counts)
    assert sorted((r["members"], r["owners"]) for r in shared) == [(2, 1), (5, 1)]
    assert (inboxes, outside) == (7, 0)

    await delete_population(dsn, users)
    connection = await asyncpg.connect(dsn)
    try:
        left = [
            await connection.fetchval(f"SELECT count(*) FROM {table}")
            for table in ("users", "projects", "project_members", "tasks", "task_counts")
        ]
    finally:
        await connection.close()
    assert left == [0, 0, 0, 0, 0]


def test_a_population_in_shared_projects_is_consistent_and_removable(postgres_url: str) -> None:
    with fresh_database(postgres_url) as url:
        command.upgrade(alembic_config(url), "head")
        dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        asyncio.run(_populate_and_remove(dsn))
