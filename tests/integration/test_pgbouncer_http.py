"""The whole service through a real PgBouncer in transaction mode (`DATABASE_PGBOUNCER=true`):
migrations on the direct URL, then two workers with more pooled connections than PgBouncer has
server connections, under concurrent sign-ups, logins, API keys and every task operation."""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.integration.backends import RedisTarget
from tests.integration.pgbouncer import PgBouncer, free_port
from tests.integration.scale.processes import (
    TASKHUB,
    App,
    clean_env,
    fresh_database,
    start_apps,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

CLIENTS = 12


@pytest.fixture(scope="module")
def bounced_app(
    postgres_url: str,
    pgbouncer: PgBouncer,
    redis_target: RedisTarget,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[App]:
    workdir = tmp_path_factory.mktemp("pgbouncer-http")
    with fresh_database(postgres_url) as direct:
        through = pgbouncer.url_for(direct)
        env = clean_env(
            workdir,
            DATABASE_URL=through,
            DATABASE_PGBOUNCER="true",
            MIGRATION_DATABASE_URL=direct,
            REDIS_URL=redis_target.url,
            REDIS_KEY_PREFIX=f"{redis_target.key_prefix}pgbouncer-{uuid.uuid4().hex[:8]}:",
            WORKERS="2",
            SQLALCHEMY_POOL_SIZE=str(pgbouncer.pool_size * 2),
            SQLALCHEMY_POOL_TIMEOUT="15",
            REDIS_TIMEOUT="5",
            RATE_LIMIT_DEFAULT="100000/minute",
            RATE_LIMIT_LOGIN="1000/minute",
            RATE_LIMIT_LOGIN_EMAIL="1000/minute",
            RATE_LIMIT_SIGNUP="1000/minute",
            PORT=str(free_port()),
            PROMETHEUS_MULTIPROC_DIR=str(workdir / "metrics"),
        )
        _migrate(env)
        (app,) = start_apps([env])
        try:
            yield app
        finally:
            app.stop()


def _migrate(env: dict[str, str]) -> None:
    # MIGRATION_DATABASE_URL is what migrates: with DATABASE_URL pointing nowhere it still works.
    nowhere = {**env, "DATABASE_URL": f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/x"}
    for run_env in (nowhere, {k: v for k, v in env.items() if k != "MIGRATION_DATABASE_URL"}):
        # The second run goes through PgBouncer itself (DATABASE_PGBOUNCER): at head, a no-op.
        done = subprocess.run(
            [TASKHUB, "migrate"],
            env=run_env,
            cwd=env["TASKHUB_WORKDIR"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr


def test_readiness_through_pgbouncer_is_ready(bounced_app: App) -> None:
    ready = httpx.get(f"{bounced_app.base}/health/ready", timeout=10)
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {"database": "ok", "redis": "ok"}


async def test_every_path_works_under_concurrency(bounced_app: App) -> None:
    base = bounced_app.base
    limits = httpx.Limits(max_connections=CLIENTS * 2, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as client:
        failures: list[str] = []

        def expect(response: httpx.Response, status: int, what: str) -> httpx.Response:
            if response.status_code != status:
                failures.append(f"{what}: {response.status_code} {response.text[:200]}")
            return response

        async def one(index: int) -> None:
            email = f"bounce-{index}-{uuid.uuid4().hex[:6]}@example.com"
            password = "a long enough password"
            expect(
                await client.post("/v1/users", json={"email": email, "password": password}),
                201,
                "sign-up",
            )
            login = expect(
                await client.post("/v1/auth/sessions", json={"email": email, "password": password}),
                201,
                "login",
            )
            if login.status_code != 201:
                return
            session = {"Authorization": f"Bearer {login.json()['token']}"}
            expect(await client.get("/v1/users/me", headers=session), 200, "me")
            key = expect(
                await client.post(
                    "/v1/api-keys",
                    headers=session,
                    json={"name": "k", "scopes": ["tasks:read", "tasks:write"]},
                ),
                201,
                "issue key",
            )
            if key.status_code != 201:
                return
            auth = {"Authorization": f"Bearer {key.json()['key']}"}
            for round_ in range(4):
                made = expect(
                    await client.post(
                        "/v1/tasks", headers=auth, json={"title": f"t{round_}", "labels": ["x"]}
                    ),
                    201,
                    "create",
                )
                if made.status_code != 201:
                    continue
                task = made.json()
                path = f"/v1/tasks/{task['id']}"
                got = expect(await client.get(path, headers=auth), 200, "get")
                expect(await client.get("/v1/tasks?label=x&limit=2", headers=auth), 200, "list")
                expect(
                    await client.patch(
                        path,
                        headers={**auth, "If-Match": got.headers.get("etag", "")},
                        json={"status": "done"},
                    ),
                    200,
                    "patch",
                )
                expect(await client.delete(path, headers=auth), 204, "delete")
                expect(await client.get(path, headers=auth), 404, "gone")
            expect(await client.get("/v1/api-keys", headers=session), 200, "list keys")
            expect(await client.delete("/v1/auth/sessions/current", headers=session), 204, "logout")

        await asyncio.gather(*(one(i) for i in range(CLIENTS)))
        metrics = (await client.get("/metrics")).text
    assert not failures, failures[:10]
    assert 'status="500"' not in metrics
