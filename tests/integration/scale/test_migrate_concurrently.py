"""Three `taskhub migrate` processes started together on an empty database: all succeed and the
schema is migrated once (issue 5, acceptance 2)."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory

from adapters.sql.tables import metadata
from tests.integration.scale.processes import ROOT, TASKHUB, asyncpg_dsn, clean_env, fresh_database

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


async def _schema(url: str) -> tuple[list[str], dict[str, int]]:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        versions = [r["version_num"] for r in await conn.fetch("SELECT * FROM alembic_version")]
        rows = await conn.fetch(
            "SELECT table_name, count(*) AS n FROM information_schema.tables"
            " WHERE table_schema NOT IN ('pg_catalog', 'information_schema')"
            " GROUP BY table_name"
        )
    finally:
        await conn.close()
    return versions, {r["table_name"]: r["n"] for r in rows}


def test_three_concurrent_migrations_migrate_once(postgres_url: str, workdir: Path) -> None:
    try:
        database = fresh_database(postgres_url)
        url = database.__enter__()
    except Exception as exc:
        pytest.skip(f"needs a fresh database and cannot create one: {exc}")
    try:
        env = clean_env(workdir, DATABASE_URL=url)
        procs = [
            subprocess.Popen(
                [TASKHUB, "migrate"],
                env=env,
                cwd=workdir,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(3)
        ]
        errors = [p.communicate(timeout=120)[1] for p in procs]
        assert [p.returncode for p in procs] == [0, 0, 0], [err[-800:] for err in errors]

        versions, tables = asyncio.run(_schema(url))
        head = ScriptDirectory.from_config(Config(str(ROOT / "alembic.ini"))).get_current_head()
        assert versions == [head]
        assert tables == dict.fromkeys({*metadata.tables, "alembic_version"}, 1)
    finally:
        database.__exit__(None, None, None)
