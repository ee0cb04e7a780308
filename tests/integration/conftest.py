"""Session-wide integration backends: real PostgreSQL and Redis (see backends.py for the order)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alembic import command

from tests.integration.backends import RedisTarget, postgres_backend, redis_backend
from tests.integration.pgbouncer import PgBouncer, alembic_config, run_pgbouncer
from tests.integration.scale.processes import fresh_database


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """SQLAlchemy URL (postgresql+asyncpg://) of a database that lives for this test run."""
    with postgres_backend() as url:
        yield url


@pytest.fixture(scope="session")
def redis_target() -> Iterator[RedisTarget]:
    """A Redis URL and a key prefix unique to this run (tests must keep their keys under it)."""
    with redis_backend() as target:
        yield target


@pytest.fixture(scope="session")
def pgbouncer(postgres_url: str) -> Iterator[PgBouncer]:
    """A real PgBouncer in transaction pooling mode in front of the test PostgreSQL, with few
    server connections so that clients share them."""
    with run_pgbouncer(postgres_url, pool_size=4) as bouncer:
        yield bouncer


@pytest.fixture(scope="session")
def pgbouncer_database(postgres_url: str, pgbouncer: PgBouncer) -> Iterator[tuple[str, str]]:
    """(direct URL, URL through PgBouncer) of a fresh database migrated on the direct one, as
    `MIGRATION_DATABASE_URL` would."""
    with fresh_database(postgres_url) as direct:
        command.upgrade(alembic_config(direct), "head")
        yield direct, pgbouncer.url_for(direct)
