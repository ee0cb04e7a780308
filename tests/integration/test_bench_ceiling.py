"""The ceiling serves the shared project's tasks, in the JSON keys Taskhub answers with, and
creates into that project only."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg  # type: ignore[import-untyped]
import pytest
from alembic import command
from litestar.testing import TestClient
from sqlalchemy.engine import make_url

from bench.seed import create_shared_project, seed_tasks
from tests.integration.pgbouncer import alembic_config
from tests.integration.scale.processes import fresh_database

KEYS = [
    "assignee_id", "completed_at", "created_at", "description", "due_at", "id", "labels",
    "parent_id", "priority", "project_id", "status", "title", "updated_at", "version",
]  # fmt: skip


async def _setup(dsn: str) -> tuple[str, str, list[str]]:
    owner = uuid.uuid4()
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(
            "INSERT INTO users (id, email, email_key, password_hash, created_at) "
            "VALUES ($1, 'o@example.com', 'o@example.com', 'h', now())",
            owner,
        )
    finally:
        await connection.close()
    project = await create_shared_project(dsn, str(owner), [])
    ids, _ = await seed_tasks(dsn, str(owner), 60, project)
    return str(owner), project, ids


def test_the_ceiling_reads_and_writes_the_shared_project(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with fresh_database(postgres_url) as url:
        command.upgrade(alembic_config(url), "head")
        dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        owner, project, ids = asyncio.run(_setup(dsn))
        monkeypatch.setenv("BENCH_CEILING_DSN", dsn)
        monkeypatch.setenv("BENCH_OWNER_ID", owner)
        monkeypatch.setenv("BENCH_PROJECT_ID", project)
        monkeypatch.setenv("BENCH_POOL_MIN", "1")
        monkeypatch.setenv("BENCH_POOL_MAX", "2")
        from bench.ceiling_app import app

        with TestClient(app) as client:
            one = client.get(f"/tasks/{ids[0]}")
            assert one.status_code == 200
            assert sorted(one.json()) == KEYS
            assert one.json()["project_id"] == project
            page = client.get("/tasks?limit=50").json()
            assert len(page["items"]) == 50
            assert page["next_cursor"]
            created = client.post("/tasks", json={"title": "x", "project_id": project})
            assert created.status_code == 201
            assert sorted(created.json()) == KEYS
            assert created.json()["project_id"] == project
            elsewhere = client.post("/tasks", json={"title": "x", "project_id": str(uuid.uuid4())})
            assert elsewhere.status_code == 404
