"""The bench's seeding writes tasks straight into PostgreSQL: it keeps `task_counts` exact too,
so the cap a bench run meets is the one its data says."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import asyncpg  # type: ignore[import-untyped]
from alembic import command
from sqlalchemy.engine import make_url

from bench.seed import reset_tasks, seed_tasks
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


def test_seeding_and_resetting_keep_the_task_count_exact(postgres_url: str) -> None:
    with fresh_database(postgres_url) as url:
        command.upgrade(alembic_config(url), "head")
        dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        asyncio.run(_seed_run_and_reset(dsn, str(uuid.uuid4())))
