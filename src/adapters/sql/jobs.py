"""The worker's schedule in the `worker_jobs` table (PostgreSQL or SQLite): each call is one short
transaction of its own, so no lock outlives it. A claim is one conditional UPDATE: under
concurrent claims of a due job the database lets exactly one of them match."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.sql.outages import is_outage, unavailable
from adapters.sql.tables import worker_jobs
from adapters.sql.types import UTC_DATETIME
from domain.ports.worker import JobState

_jobs = worker_jobs.c
_SELECT_STATES = select(
    _jobs.name, _jobs.next_run_at, _jobs.leased_by, _jobs.leased_until, _jobs.last_success_at
).order_by(_jobs.name)
_NOW = bindparam("now", type_=UTC_DATETIME)
_CLAIM_EARLY = (
    update(worker_jobs)
    .where(
        _jobs.name == bindparam("job"),
        or_(_jobs.leased_until.is_(None), _jobs.leased_until <= _NOW),
    )
    .values(leased_by=bindparam("holder"), leased_until=bindparam("until", type_=UTC_DATETIME))
)
_CLAIM = _CLAIM_EARLY.where(_jobs.next_run_at <= _NOW)
_RENEW = (
    update(worker_jobs)
    .where(_jobs.name == bindparam("job"), _jobs.leased_by == bindparam("holder"))
    .values(leased_until=bindparam("until", type_=UTC_DATETIME))
)
_RELEASE = (
    update(worker_jobs)
    .where(_jobs.name == bindparam("job"), _jobs.leased_by == bindparam("holder"))
    .values(
        leased_by=None,
        leased_until=None,
        next_run_at=bindparam("next_run_at", type_=UTC_DATETIME),
    )
)
_RELEASE_AFTER_SUCCESS = _RELEASE.values(
    last_success_at=bindparam("succeeded_at", type_=UTC_DATETIME)
)
_RECORD_SUCCESS = (
    update(worker_jobs)
    .where(
        _jobs.name == bindparam("job"),
        or_(_jobs.last_success_at.is_(None), _jobs.last_success_at < _NOW),
    )
    .values(last_success_at=_NOW)
)


class SqlJobSchedule:
    """The `JobSchedule` port over its own connections from the engine's pool."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._postgresql = engine.dialect.name == "postgresql"

    async def register(self, names: Sequence[str], now: datetime) -> None:
        if not names:
            return
        dialect: Any = postgresql if self._postgresql else sqlite
        rows = [{"name": name, "next_run_at": now} for name in names]
        statement = dialect.insert(worker_jobs).values(rows).on_conflict_do_nothing()
        await self._write(statement, {})

    async def states(self) -> list[JobState]:
        try:
            async with self._engine.connect() as conn:
                rows = (await conn.execute(_SELECT_STATES)).all()
        except Exception as exc:
            if is_outage(exc):
                raise unavailable(exc) from exc
            raise
        return [
            JobState(
                name=row.name,
                next_run_at=row.next_run_at,
                leased_by=row.leased_by,
                leased_until=row.leased_until,
                last_success_at=row.last_success_at,
            )
            for row in rows
        ]

    async def claim(
        self, name: str, holder: str, now: datetime, until: datetime, *, early: bool = False
    ) -> bool:
        params = {"job": name, "holder": holder, "now": now, "until": until}
        return await self._write(_CLAIM_EARLY if early else _CLAIM, params) == 1

    async def renew(self, name: str, holder: str, until: datetime) -> bool:
        return await self._write(_RENEW, {"job": name, "holder": holder, "until": until}) == 1

    async def release(
        self, name: str, holder: str, *, next_run_at: datetime, succeeded_at: datetime | None
    ) -> None:
        params: dict[str, Any] = {"job": name, "holder": holder, "next_run_at": next_run_at}
        if succeeded_at is None:
            await self._write(_RELEASE, params)
        else:
            await self._write(_RELEASE_AFTER_SUCCESS, {**params, "succeeded_at": succeeded_at})

    async def record_success(self, name: str, at: datetime) -> None:
        await self._write(_RECORD_SUCCESS, {"job": name, "now": at})

    async def _write(self, statement: Any, params: dict[str, Any]) -> int:
        try:
            async with self._engine.begin() as conn:
                result: Any = await conn.execute(statement, params)
        except Exception as exc:
            if is_outage(exc):
                raise unavailable(exc) from exc
            raise
        return int(result.rowcount)
