"""Engine options against a real PostgreSQL: the PgBouncer mode still runs repeated statements."""

from __future__ import annotations

from sqlalchemy import text

from adapters.sql.engine import create_engine


async def test_pgbouncer_mode_runs_the_same_statement_many_times(postgres_url: str) -> None:
    engine = create_engine(postgres_url, pool_size=1, max_overflow=0, pgbouncer=True)
    try:
        async with engine.connect() as conn:
            values = [
                (await conn.execute(text("SELECT CAST(:n AS int) + 1"), {"n": n})).scalar_one()
                for n in range(5)
            ]
            timeout = (await conn.execute(text("SHOW statement_timeout"))).scalar_one()
        assert values == [1, 2, 3, 4, 5]
        assert timeout == "5s"
    finally:
        await engine.dispose()
