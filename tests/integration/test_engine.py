"""Engine options against a real PostgreSQL: what each mode sets on its connections."""

from __future__ import annotations

from sqlalchemy import text

from adapters.sql.engine import create_engine
from tests.integration.pgbouncer import PgBouncer


async def _settings(url: str, **options: object) -> tuple[list[int], str, str, str]:
    engine = create_engine(url, pool_size=1, max_overflow=0, **options)  # type: ignore[arg-type]
    try:
        async with engine.connect() as conn:
            values = [
                (await conn.execute(text("SELECT CAST(:n AS int) + 1"), {"n": n})).scalar_one()
                for n in range(5)
            ]
            shown = [
                (await conn.execute(text(f"SHOW {name}"))).scalar_one()
                for name in ("statement_timeout", "idle_in_transaction_session_timeout")
            ]
            name = (await conn.execute(text("SHOW application_name"))).scalar_one()
        return values, shown[0], shown[1], name
    finally:
        await engine.dispose()


async def test_a_direct_engine_sets_the_timeouts_per_session(postgres_url: str) -> None:
    values, timeout, idle, name = await _settings(postgres_url, statement_timeout_ms=3000)
    assert values == [1, 2, 3, 4, 5]
    assert (timeout, idle, name) == ("3s", "12s", "taskhub")


async def test_pgbouncer_mode_runs_repeated_statements_and_sends_no_timeouts(
    postgres_url: str, pgbouncer: PgBouncer
) -> None:
    """PgBouncer refuses startup parameters it does not track: only application_name goes
    (the timeouts come from the database role there)."""
    for url in (postgres_url, pgbouncer.url_for(postgres_url)):
        values, timeout, _idle, name = await _settings(
            url, pgbouncer=True, statement_timeout_ms=3000
        )
        assert values == [1, 2, 3, 4, 5]
        assert timeout != "3s"
        assert name == "taskhub"
