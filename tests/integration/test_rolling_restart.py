"""Rolling-restart rehearsal: three `taskhub serve` replicas on PostgreSQL + Redis behind a real
HAProxy that polls `/health/ready`. While a mixed client load (creates, reads, lists) runs
through the proxy, each replica in turn gets SIGTERM, drains, exits and is started again.
Nothing may fail, every acknowledged create must be stored, and a login rate limit probed all
along must hold across the replicas as one limit."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import httpx
import pytest
from alembic import command

from tests.integration.backends import RedisTarget
from tests.integration.haproxy import HAProxy, run_haproxy
from tests.integration.pgbouncer import alembic_config
from tests.integration.scale.processes import (
    App,
    asyncpg_dsn,
    clean_env,
    free_port,
    fresh_database,
    start_apps,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(480)]

REPLICAS = 3
LOAD_CLIENTS = 3
LOGIN_LIMIT = 12  # per minute: GCRA admits a burst of 12, then one every 5 s
PROBES = 2
LOGIN_INTERVAL = 60 / LOGIN_LIMIT
PASSWORD = "a long enough password"


@dataclass
class Cluster:
    proxy: HAProxy
    envs: list[dict[str, str]]
    apps: list[App]
    direct_url: str


@pytest.fixture
def cluster(postgres_url: str, redis_target: RedisTarget, tmp_path: Path) -> Iterator[Cluster]:
    with fresh_database(postgres_url) as direct:
        command.upgrade(alembic_config(direct), "head")
        common = {
            "DATABASE_URL": direct,
            "REDIS_URL": redis_target.url,
            "REDIS_KEY_PREFIX": f"{redis_target.key_prefix}rolling-{uuid.uuid4().hex[:8]}:",
            "WORKERS": "1",
            "SQLALCHEMY_POOL_SIZE": "5",
            "SQLALCHEMY_POOL_TIMEOUT": "15",
            # The load and the replicas share two cores: starved timers must not fail open.
            "REDIS_TIMEOUT": "5",
            "RATE_LIMIT_DEFAULT": "100000/minute",
            "RATE_LIMIT_LOGIN": f"{LOGIN_LIMIT}/minute",
            # Longer than the proxy needs to see two failed checks (2 x 300 ms, and slow checks
            # on a busy machine).
            "SHUTDOWN_DRAIN_SECONDS": "4",
            "SHUTDOWN_TIMEOUT_SECONDS": "15",
        }
        envs = [
            clean_env(
                tmp_path / f"replica-{i}",
                **common,
                PORT=str(free_port()),
                PROMETHEUS_MULTIPROC_DIR=str(tmp_path / f"metrics-{i}"),
            )
            for i in range(REPLICAS)
        ]
        apps = start_apps(envs)
        try:
            with run_haproxy([int(env["PORT"]) for env in envs], tmp_path / "haproxy") as proxy:
                for i in range(REPLICAS):
                    proxy.wait_for(f"r{i}", "UP")
                yield Cluster(proxy, envs, apps, direct)
        finally:
            for app in apps:
                app.stop()


@dataclass
class Tally:
    failures: list[str] = field(default_factory=list)
    created: set[str] = field(default_factory=set)
    answered: int = 0
    admitted_logins: int = 0
    limited_logins: int = 0

    def fail(self, what: str, detail: object) -> None:
        self.failures.append(f"{what}: {detail}"[:300])


async def _load(
    client: httpx.AsyncClient, auth: dict[str, str], tally: Tally, stop: asyncio.Event
) -> None:
    n = 0
    while not stop.is_set():
        n += 1
        try:
            made = await client.post("/v1/tasks", headers=auth, json={"title": f"load {n}"})
            if made.status_code != 201:
                tally.fail("create", f"{made.status_code} {made.text}")
                continue
            task_id = made.json()["id"]
            tally.created.add(task_id)
            got = await client.get(f"/v1/tasks/{task_id}", headers=auth)
            if got.status_code != 200:
                tally.fail("read", f"{got.status_code} {got.text}")
            listed = await client.get("/v1/tasks?limit=5", headers=auth)
            if listed.status_code != 200:
                tally.fail("list", f"{listed.status_code} {listed.text}")
            tally.answered += 3
        except httpx.HTTPError as exc:
            tally.fail("transport", f"{time.strftime('%H:%M:%S')} {exc!r} {exc.request.url}")


async def _probe_login_limit(client: httpx.AsyncClient, tally: Tally, stop: asyncio.Event) -> None:
    """Wrong-password logins for one e-mail, up to ten a second: each is 401 (admitted and
    counted) or 429."""
    body = {"email": "probe@example.com", "password": "not the password"}
    while not stop.is_set():
        try:
            answer = await client.post("/v1/auth/sessions", json=body)
        except httpx.HTTPError as exc:
            tally.fail("probe transport", repr(exc))
            continue
        if answer.status_code == 401:
            tally.admitted_logins += 1
        elif answer.status_code == 429 and answer.headers.get("retry-after", "").isdigit():
            tally.limited_logins += 1
        else:
            tally.fail("probe", f"{answer.status_code} {answer.text}")
        await asyncio.sleep(0.1)


async def _restart_each(cluster: Cluster) -> list[int]:
    """SIGTERM each replica in turn, wait for it to exit, start it again and wait until the
    proxy has it UP again; returns each replica's exit status."""
    statuses = []
    for i, app in enumerate(cluster.apps):
        await asyncio.sleep(1)  # let the load spread over all replicas first
        app.proc.terminate()
        await asyncio.to_thread(cluster.proxy.wait_for, f"r{i}", "DOWN")
        statuses.append(await asyncio.to_thread(app.proc.wait, 60))
        # The same port; a directory of its own, so that the first process's log stays.
        again = Path(cluster.envs[i]["TASKHUB_WORKDIR"]) / "restarted"
        again.mkdir()
        env = {**cluster.envs[i], "TASKHUB_WORKDIR": str(again)}
        (cluster.apps[i],) = await asyncio.to_thread(start_apps, [env])
        await asyncio.to_thread(cluster.proxy.wait_for, f"r{i}", "UP")
    await asyncio.sleep(1)
    return statuses


async def test_a_rolling_restart_loses_nothing(cluster: Cluster) -> None:
    tally = Tally()
    limits = httpx.Limits(max_connections=LOAD_CLIENTS + PROBES + 2)
    async with httpx.AsyncClient(base_url=cluster.proxy.base, timeout=60, limits=limits) as client:
        email = f"rolling-{uuid.uuid4().hex[:8]}@example.com"
        signed_up = await client.post("/v1/users", json={"email": email, "password": PASSWORD})
        assert signed_up.status_code == 201, signed_up.text
        login = await client.post("/v1/auth/sessions", json={"email": email, "password": PASSWORD})
        assert login.status_code == 201, login.text
        auth = {"Authorization": f"Bearer {login.json()['token']}"}

        stop = asyncio.Event()
        started = time.monotonic()
        workers = [
            asyncio.create_task(_load(client, auth, tally, stop)) for _ in range(LOAD_CLIENTS)
        ]
        probes = [
            asyncio.create_task(_probe_login_limit(client, tally, stop)) for _ in range(PROBES)
        ]
        try:
            statuses = await _restart_each(cluster)
        finally:
            stop.set()
            await asyncio.gather(*workers, *probes)
        span = time.monotonic() - started

    assert statuses == [0] * REPLICAS, "every replica exits 0 after its drain"
    # The proxy took each replica out because readiness said 503 (draining), not because the
    # replica had stopped answering.
    log = cluster.proxy.log.read_text(errors="replace")
    for i in range(REPLICAS):
        assert f"Server replicas/r{i} is DOWN, reason: Layer7 wrong status, code: 503" in log
    assert not tally.failures, (
        f"{len(tally.failures)} failed of {tally.answered}: {tally.failures[:5]}"
    )
    assert tally.created, "the load created tasks"

    # Every acknowledged create is stored.
    conn = await asyncpg.connect(asyncpg_dsn(cluster.direct_url))
    try:
        stored = {str(r["id"]) for r in await conn.fetch("SELECT id FROM tasks")}
    finally:
        await conn.close()
    missing = tally.created - stored
    assert not missing, f"{len(missing)} acknowledged tasks are missing"

    # One login limit across the replicas (and their restarts): a burst of LOGIN_LIMIT (less
    # the set-up login on the same client address) plus one per interval of the probe's span.
    # Per-replica limits would admit about three times as many.
    refill = int(span // LOGIN_INTERVAL) + 1
    assert LOGIN_LIMIT - 1 <= tally.admitted_logins <= LOGIN_LIMIT + refill, (
        f"{tally.admitted_logins} logins admitted in {span:.0f} s; one {LOGIN_LIMIT}/minute "
        f"limit admits at most {LOGIN_LIMIT + refill}"
    )
    assert tally.limited_logins > 0
