"""The worker's SQL adapters on every database: the shared schedule (a due job goes to exactly
one of many concurrent claimers, leases expire and are taken over) and the session purge (one
bounded batch per call; on PostgreSQL rows held by another transaction are skipped)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.sql.jobs import SqlJobSchedule
from adapters.sql.tables import sessions
from adapters.sql.uow import SqlUnitOfWork
from domain.auth import Session
from tests.integration.sql.conftest import Database, UowFactory, add_user, new_id

NOW = datetime(2026, 12, 1, 12, 0, 0, 123456, tzinfo=UTC)
LEASE = timedelta(seconds=30)
# Far before any other test's sessions, so that a purge up to it touches only this module's rows.
LONG_AGO = datetime(2001, 1, 1, tzinfo=UTC)
# SQLite has one writer at a time: no row is ever held by another transaction to skip.
POSTGRESQL_ONLY_TESTS = ("test_a_purge_skips_rows_another_transaction_holds",)


def job_name() -> str:
    return f"job_{uuid.uuid4().hex[:12]}"


async def test_register_keeps_existing_rows(engine: AsyncEngine) -> None:
    schedule = SqlJobSchedule(engine)
    name = job_name()
    await schedule.register([name], NOW)
    assert await schedule.claim(name, "w1", NOW, NOW + LEASE)
    await schedule.register([name], NOW + timedelta(days=1))

    [state] = [s for s in await schedule.states() if s.name == name]
    assert (state.next_run_at, state.leased_by, state.leased_until) == (NOW, "w1", NOW + LEASE)


async def test_of_many_concurrent_claims_exactly_one_wins(engine: AsyncEngine) -> None:
    schedules = [SqlJobSchedule(engine) for _ in range(4)]
    name = job_name()
    await schedules[0].register([name], NOW)

    won = await asyncio.gather(
        *(s.claim(name, f"w{i}", NOW, NOW + LEASE) for i, s in enumerate(schedules))
    )

    assert sorted(won) == [False, False, False, True]


async def test_a_job_is_claimed_only_when_due_and_free(engine: AsyncEngine) -> None:
    schedule = SqlJobSchedule(engine)
    name = job_name()
    await schedule.register([name], NOW)
    assert not await schedule.claim(name, "w1", NOW - timedelta(seconds=1), NOW + LEASE)
    assert await schedule.claim(name, "w1", NOW, NOW + LEASE)
    assert not await schedule.claim(name, "w2", NOW + LEASE - timedelta(microseconds=1), NOW)
    # Expired: another worker takes it over, and the first one can no longer renew or release.
    assert await schedule.claim(name, "w2", NOW + LEASE, NOW + 2 * LEASE)
    assert not await schedule.renew(name, "w1", NOW + 3 * LEASE)
    await schedule.release(name, "w1", next_run_at=NOW, succeeded_at=NOW)
    assert await schedule.renew(name, "w2", NOW + 3 * LEASE)
    done = NOW + LEASE + timedelta(seconds=5)
    await schedule.release(name, "w2", next_run_at=done + timedelta(hours=1), succeeded_at=done)

    [state] = [s for s in await schedule.states() if s.name == name]
    assert state.leased_by is None
    assert state.leased_until is None
    assert state.next_run_at == done + timedelta(hours=1)
    assert state.last_success_at == done


async def test_an_early_claim_takes_a_job_before_it_is_due_but_not_while_leased(
    engine: AsyncEngine,
) -> None:
    schedule = SqlJobSchedule(engine)
    name = job_name()
    await schedule.register([name], NOW + timedelta(hours=1))
    assert not await schedule.claim(name, "w1", NOW, NOW + LEASE)
    assert await schedule.claim(name, "w1", NOW, NOW + LEASE, early=True)
    assert not await schedule.claim(name, "w2", NOW, NOW + LEASE, early=True)
    assert await schedule.claim(name, "w2", NOW + LEASE, NOW + 2 * LEASE, early=True)


async def test_a_failed_run_keeps_the_last_success(engine: AsyncEngine) -> None:
    schedule = SqlJobSchedule(engine)
    name = job_name()
    await schedule.register([name], NOW)
    assert await schedule.claim(name, "w1", NOW, NOW + LEASE)
    await schedule.release(name, "w1", next_run_at=NOW + LEASE, succeeded_at=NOW)
    assert await schedule.claim(name, "w1", NOW + LEASE, NOW + 2 * LEASE)
    await schedule.release(name, "w1", next_run_at=NOW + 2 * LEASE, succeeded_at=None)
    await schedule.record_success(name, NOW - timedelta(hours=1))  # never moves backwards

    [state] = [s for s in await schedule.states() if s.name == name]
    assert (state.next_run_at, state.last_success_at) == (NOW + 2 * LEASE, NOW)


async def _expired_sessions(new_uow: UowFactory, count: int) -> list[str]:
    user = await add_user(new_uow)
    ids = [new_id() for _ in range(count)]
    async with new_uow() as uow:
        for session_id in ids:
            await uow.sessions.add(
                Session(
                    id=session_id,
                    user_id=user.id,
                    token_hash=uuid.uuid4().hex * 2,
                    created_at=LONG_AGO - timedelta(days=2),
                    expires_at=LONG_AGO - timedelta(days=1),
                )
            )
        await uow.commit()
    return ids


async def _purge(new_uow: UowFactory, limit: int) -> int:
    async with new_uow() as uow:
        purged = await uow.sessions.purge_expired(LONG_AGO, limit)
        await uow.commit()
    return purged


async def _count(engine: AsyncEngine, ids: list[str]) -> int:
    async with engine.connect() as conn:
        rows = await conn.execute(text("SELECT id FROM sessions"))
        return len({str(row.id) for row in rows} & set(ids))


async def test_a_purge_deletes_one_batch_at_a_time(
    engine: AsyncEngine, new_uow: UowFactory
) -> None:
    ids = await _expired_sessions(new_uow, 5)
    revoked = await _expired_sessions(new_uow, 1)
    async with new_uow() as uow:  # revoked long ago, though it would expire only later
        await uow.sessions.revoke(revoked[0], LONG_AGO - timedelta(days=1))
        await uow.commit()
    async with engine.begin() as conn:
        await conn.execute(
            update(sessions).where(sessions.c.id == revoked[0]).values(expires_at=NOW)
        )

    assert await _purge(new_uow, 4) == 4
    assert await _purge(new_uow, 4) == 2
    assert await _purge(new_uow, 4) == 0
    assert await _count(engine, ids + revoked) == 0


async def test_a_purge_skips_rows_another_transaction_holds(
    engine: AsyncEngine, new_uow: UowFactory, database: Database
) -> None:
    ids = await _expired_sessions(new_uow, 3)
    async with SqlUnitOfWork(engine) as holder:
        await holder.sessions.revoke(ids[0], NOW)  # locks that row until this block ends
        assert await asyncio.wait_for(_purge(new_uow, 10), timeout=5) == 2
    assert await _count(engine, ids) == 1
    assert await _purge(new_uow, 10) == 1
