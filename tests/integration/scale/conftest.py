"""Module-wide backends for the scale tests: a fresh, migrated database and a Redis key prefix."""

from __future__ import annotations

import contextlib
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis import Redis

from tests.integration.backends import RedisTarget
from tests.integration.scale.processes import clean_env, fresh_database, run_all


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The processes' working directory (their logs land here too)."""
    return tmp_path_factory.mktemp("scale")


@pytest.fixture(scope="module")
def scale_db(postgres_url: str, workdir: Path) -> Iterator[str]:
    """A migrated database for this module: a new one on the test server when the account may
    create databases, else the run's own database."""
    with contextlib.ExitStack() as stack:
        try:
            url = stack.enter_context(fresh_database(postgres_url))
        except Exception as exc:
            warnings.warn(f"cannot create a database ({exc}); using the run's own", stacklevel=1)
            url = postgres_url
        run_all(clean_env(workdir, DATABASE_URL=url), [(["migrate"], None)])
        yield url


@pytest.fixture(scope="module")
def redis_prefix(redis_target: RedisTarget) -> Iterator[str]:
    """A key prefix for this module's apps; their keys are deleted afterwards."""
    prefix = f"{redis_target.key_prefix}scale-{uuid.uuid4().hex[:8]}:"
    yield prefix
    client = Redis.from_url(redis_target.url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()
