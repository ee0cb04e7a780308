from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from adapters.sql.engine import create_engine, watch_pool


async def test_pool_watch_reports_checkouts_and_returns(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/pool.db")
    reports: list[tuple[int, int]] = []
    watch_pool(engine, lambda out, over: reports.append((out, over)))
    try:
        async with engine.connect() as first:
            async with engine.connect() as second:
                await first.execute(text("SELECT 1"))
                await second.execute(text("SELECT 1"))
                assert reports[-1][0] == 2
            assert reports[-1][0] == 1
        assert reports[-1][0] == 0
    finally:
        await engine.dispose()


async def test_sqlite_file_directory_is_created(tmp_path: Path) -> None:
    target = tmp_path / "nested" / "dir" / "t.db"
    engine = create_engine(f"sqlite+aiosqlite:///{target}")
    try:
        async with engine.connect() as conn:
            mode = (await conn.execute(text("PRAGMA journal_mode"))).scalar_one()
        assert target.exists()
        assert mode == "wal"
    finally:
        await engine.dispose()
