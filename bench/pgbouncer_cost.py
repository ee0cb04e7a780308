"""What PgBouncer (transaction pooling, `DATABASE_PGBOUNCER=true`) costs one repository call.

Runs against the local PostgreSQL (or `BENCH_DATABASE_URL`, a server URL whose account may
create databases) and a PgBouncer it starts itself on a free port (Debian's `pgbouncer`):
a fresh database, migrated, one user and one task; then, one call at a time, the same
read-only `GetTask` unit of work (`SqlUnitOfWork` in its raw mode, the hot path) and a
read-only identity lookup (`SqlUnitOfWork`, through SQLAlchemy) on three engines:

- direct: the default engine (asyncpg's statement cache on);
- direct, PgBouncer mode: no statement caches, unnamed statements (what the mode itself costs);
- through PgBouncer, PgBouncer mode (what production behind PgBouncer pays: the mode plus a hop).

Prints the median of `--repeats` runs of `--calls` calls each, in microseconds per call. Not
part of `make bench`; figures from one run on one machine compare with each other only.

    .venv/bin/python -m bench.pgbouncer_cost [--calls 2000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from alembic import command
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.sql.engine import create_engine
from adapters.sql.uow import SqlUnitOfWork
from domain.tasks import Task, TaskStatus
from domain.users import User
from tests.integration.pgbouncer import alembic_config, run_pgbouncer
from tests.integration.scale.processes import fresh_database

SERVER = os.environ.get(
    "BENCH_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)


async def _seed(engine: AsyncEngine) -> tuple[User, Task]:
    now = datetime.now(UTC)
    user = User(
        id=str(uuid.uuid4()),
        email=f"cost-{uuid.uuid4().hex[:8]}@example.com",
        name="Cost",
        password_hash="$argon2id$v=19$fake",
        created_at=now,
    )
    inbox_id = str(uuid.uuid4())
    task = Task(
        id=str(uuid.uuid4()),
        owner_id=user.id,
        project_id=inbox_id,
        title="measure",
        description=None,
        status=TaskStatus.TODO,
        priority=1,
        labels=("a",),
        due_at=None,
        completed_at=None,
        created_at=now,
        updated_at=now,
        version=1,
    )
    async with SqlUnitOfWork(engine) as uow:
        await uow.users.add(user)
        await uow.tasks.add(task)
        await uow.commit()
    return user, task


async def _per_call_us(call: Callable[[], Awaitable[object]], calls: int, repeats: int) -> float:
    for _ in range(50):  # warm the pool and the codecs
        await call()
    runs = []
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(calls):
            await call()
        runs.append((time.perf_counter() - started) / calls * 1e6)
    return statistics.median(runs)


async def _measure(urls: dict[str, tuple[str, bool]], calls: int, repeats: int) -> None:
    engines = {
        name: create_engine(url, pool_size=1, pgbouncer=mode) for name, (url, mode) in urls.items()
    }
    try:
        user, task = await _seed(next(iter(engines.values())))
        print(f"{'engine':34} {'GetTask (raw asyncpg)':>22} {'users.get (SQLAlchemy)':>24}")
        for name, engine in engines.items():

            async def get_task(engine: AsyncEngine = engine) -> object:
                async with SqlUnitOfWork(engine, read_only=True, raw=True) as uow:
                    return await uow.tasks.get(task.id, user.id)

            async def get_user(engine: AsyncEngine = engine) -> object:
                async with SqlUnitOfWork(engine, read_only=True) as uow:
                    return await uow.users.get(user.id)

            fast = await _per_call_us(get_task, calls, repeats)
            orm = await _per_call_us(get_user, calls, repeats)
            print(f"{name:34} {fast:19.0f} µs {orm:21.0f} µs")
    finally:
        for engine in engines.values():
            await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with fresh_database(SERVER) as direct, run_pgbouncer(SERVER, pool_size=2) as bouncer:
        command.upgrade(alembic_config(direct), "head")
        urls = {
            "direct": (direct, False),
            "direct, PgBouncer mode": (direct, True),
            "through PgBouncer, PgBouncer mode": (bouncer.url_for(direct), True),
        }
        asyncio.run(_measure(urls, args.calls, args.repeats))


if __name__ == "__main__":
    main()
