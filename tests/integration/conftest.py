"""Session-wide integration backends: real PostgreSQL and Redis (see backends.py for the order)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.backends import RedisTarget, postgres_backend, redis_backend


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
