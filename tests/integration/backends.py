"""Where integration tests find PostgreSQL and Redis.

Order (README, "How the tests find PostgreSQL and Redis"): TEST_DATABASE_URL / TEST_REDIS_URL
when set; else testcontainers when a Docker daemon answers (images from TEST_POSTGRES_IMAGE /
TEST_REDIS_IMAGE); else the local servers on their default ports (a fresh, uniquely named
database per run, dropped after; a unique key prefix in Redis); else skip with a loud reason —
except under CI=true, where a missing backend fails the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import asyncpg  # type: ignore[import-untyped]
import pytest

# Ryuk (the reaper container) needs an image pull; containers are stopped in `finally` instead.
os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")

LOCAL_PG = ("127.0.0.1", 5432)
LOCAL_REDIS = ("127.0.0.1", 6379)


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def unavailable(reason: str) -> None:
    """Skip loudly, or fail under CI=true where a missing backend is an error."""
    message = f"integration backend unavailable: {reason}"
    if in_ci():
        pytest.fail(message + " (CI=true: a missing backend is a failure, not a skip)")
    pytest.skip(message)


def containers_required() -> bool:
    """TEST_REQUIRE_CONTAINERS=1 (set by .ci/run): a daemon that cannot start the images fails."""
    return os.environ.get("TEST_REQUIRE_CONTAINERS", "").lower() in {"1", "true", "yes"}


def container_failed(image: str, exc: Exception) -> None:
    message = f"testcontainers could not start {image}: {str(exc)[:300]}"
    if containers_required():
        pytest.fail(message + " (TEST_REQUIRE_CONTAINERS is set)")
    warnings.warn(message + "; falling back to the local server", stacklevel=2)


def docker_answers() -> bool:
    if os.environ.get("TEST_NO_DOCKER"):
        return False
    try:
        import docker  # type: ignore[import-untyped]

        client = docker.from_env(timeout=3)
        client.ping()
    except Exception:
        return False
    return True


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


@dataclass(frozen=True)
class RedisTarget:
    url: str
    key_prefix: str


@contextlib.contextmanager
def postgres_backend() -> Iterator[str]:
    """Yields an SQLAlchemy URL (postgresql+asyncpg://...) of an empty database."""
    given = os.environ.get("TEST_DATABASE_URL")
    if given:
        yield given
        return
    if docker_answers():
        from testcontainers.postgres import PostgresContainer

        image = os.environ.get("TEST_POSTGRES_IMAGE", "postgres:16-alpine")
        try:
            # DockerException comes from the constructor (PITFALLS 9), pull errors from start().
            container = PostgresContainer(image, driver="asyncpg")
            container.start()
        except Exception as exc:
            container_failed(image, exc)
        else:
            try:
                yield container.get_connection_url()
            finally:
                container.stop()
            return
    if port_open(*LOCAL_PG):
        with contextlib.contextmanager(_fresh_local_database)() as url:
            yield url
        return
    unavailable(
        "no TEST_DATABASE_URL, no Docker daemon, nothing on 127.0.0.1:5432 "
        "(start PostgreSQL or set TEST_DATABASE_URL=postgresql+asyncpg://...)"
    )


def _admin_execute(sql: str) -> None:
    async def run() -> None:
        conn = await asyncpg.connect(
            host=LOCAL_PG[0], port=LOCAL_PG[1], user="postgres", database="postgres"
        )
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run())


def _fresh_local_database() -> Iterator[str]:
    name = f"taskhub_test_{uuid.uuid4().hex[:12]}"
    try:
        _admin_execute(f'CREATE DATABASE "{name}"')
    except Exception as exc:
        unavailable(f"cannot create a database on the local PostgreSQL: {exc}")
    try:
        yield f"postgresql+asyncpg://postgres@{LOCAL_PG[0]}:{LOCAL_PG[1]}/{name}"
    finally:
        _admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def redis_backend() -> Iterator[RedisTarget]:
    prefix = f"taskhub-test-{uuid.uuid4().hex[:12]}:"
    given = os.environ.get("TEST_REDIS_URL")
    if given:
        yield RedisTarget(given, prefix)
        return
    if docker_answers():
        from testcontainers.redis import RedisContainer

        image = os.environ.get("TEST_REDIS_IMAGE", "redis:7-alpine")
        try:
            container = RedisContainer(image)
            container.start()
        except Exception as exc:
            container_failed(image, exc)
        else:
            try:
                host = container.get_container_host_ip()
                port = container.get_exposed_port(6379)
                yield RedisTarget(f"redis://{host}:{port}/0", prefix)
            finally:
                container.stop()
            return
    if port_open(*LOCAL_REDIS):
        yield RedisTarget(f"redis://{LOCAL_REDIS[0]}:{LOCAL_REDIS[1]}/0", prefix)
        return
    unavailable(
        "no TEST_REDIS_URL, no Docker daemon, nothing on 127.0.0.1:6379 "
        "(start Redis or set TEST_REDIS_URL=redis://...)"
    )
