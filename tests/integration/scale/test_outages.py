"""Backend outages played with a TCP proxy the test cuts and restores (issue 5, acceptance 4 and 5):
PostgreSQL lost under a stream of writes, and Redis lost for the rate limiter and idempotency."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
from sqlalchemy.engine import make_url

from tests.integration.backends import RedisTarget
from tests.integration.scale.processes import App, clean_env, create_accounts, free_port, start_apps
from tests.integration.scale.tcp_proxy import TcpProxy

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

PROBLEM_JSON = "application/problem+json"
CLIENT_TIMEOUT = 15.0  # "does not hang": every answer must come well before this


@dataclass(frozen=True)
class Keys:
    writer: str  # the PostgreSQL outage stream
    outage: str  # used while Redis is down
    fresh: str  # first used after Redis is back


@pytest.fixture(scope="module")
def keys(scale_db: str, workdir: Path) -> Keys:
    rw = ["tasks:read", "tasks:write"]
    made = create_accounts(
        clean_env(workdir, DATABASE_URL=scale_db), {"outage@example.com": [rw, rw, rw]}
    )
    writer, outage, fresh = made["outage@example.com"]
    return Keys(writer, outage, fresh)


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def is_problem(response: httpx.Response, status: int) -> bool:
    return (
        response.status_code == status
        and response.headers.get("content-type", "").startswith(PROBLEM_JSON)
        and bool(response.json().get("status") == status)
    )


# --- PostgreSQL -------------------------------------------------------------------------------


@pytest.fixture
def pg_proxy(scale_db: str) -> Iterator[TcpProxy]:
    url = make_url(scale_db)
    with TcpProxy(url.host or "127.0.0.1", url.port or 5432) as proxy:
        yield proxy


@pytest.fixture
def app_over_pg_proxy(
    scale_db: str, pg_proxy: TcpProxy, workdir: Path, keys: Keys
) -> Iterator[App]:
    proxied = make_url(scale_db).set(host="127.0.0.1", port=pg_proxy.port)
    env = clean_env(
        workdir,
        DATABASE_URL=proxied.render_as_string(False),
        PORT=str(free_port()),
        WORKERS="1",
        DATABASE_STATEMENT_TIMEOUT_MS="2000",
        SQLALCHEMY_POOL_TIMEOUT="2",
        RATE_LIMIT_DEFAULT="100000/minute",
    )
    (app,) = start_apps([env])
    try:
        yield app
    finally:
        app.stop()


@dataclass(frozen=True)
class Outcome:
    started: float
    ended: float
    status: int | None  # None: no answer (client timeout or a broken connection)
    detail: str
    task_id: str | None = None


@dataclass
class Stream:
    """Shared by the writers: their outcomes, and when the first 201 after the restore came."""

    outcomes: list[Outcome]
    stop: asyncio.Event
    recovered: asyncio.Event
    restored_at: float | None = None


async def _write_stream(client: httpx.AsyncClient, url: str, key: str, stream: Stream) -> None:
    n = 0
    while not stream.stop.is_set():
        n += 1
        started = time.monotonic()
        try:
            r = await client.post(url, json={"title": f"under load {n}"}, headers=bearer(key))
        except httpx.HTTPError as exc:
            stream.outcomes.append(Outcome(started, time.monotonic(), None, repr(exc)))
            continue
        ok_problem = r.status_code != 503 or (
            is_problem(r, 503) and r.headers.get("retry-after", "").isdigit()
        )
        detail = "" if ok_problem else f"503 without problem+json/Retry-After: {r.text[:200]}"
        if r.status_code not in {201, 503}:
            detail = r.text[:300]
        task_id = r.json()["id"] if r.status_code == 201 else None
        stream.outcomes.append(Outcome(started, time.monotonic(), r.status_code, detail, task_id))
        if task_id and stream.restored_at is not None and started > stream.restored_at:
            stream.recovered.set()
        await asyncio.sleep(0.1)


async def test_postgres_outage_under_load_fails_fast_and_recovers(
    app_over_pg_proxy: App, pg_proxy: TcpProxy, keys: Keys
) -> None:
    app = app_over_pg_proxy
    stream = Stream(outcomes=[], stop=asyncio.Event(), recovered=asyncio.Event())
    outcomes = stream.outcomes
    async with httpx.AsyncClient(timeout=CLIENT_TIMEOUT) as client:
        streams = [
            asyncio.create_task(_write_stream(client, f"{app.base}/v1/tasks", keys.writer, stream))
            for _ in range(3)
        ]
        try:
            await asyncio.sleep(2)
            await asyncio.to_thread(pg_proxy.cut)
            cut_at = time.monotonic()
            await asyncio.sleep(4)
            await asyncio.to_thread(pg_proxy.restore)
            restored_at = stream.restored_at = time.monotonic()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stream.recovered.wait(), 30)
            await asyncio.sleep(2)
        finally:
            stream.stop.set()
            await asyncio.gather(*streams)

        no_answer = [o.detail for o in outcomes if o.status is None]
        assert not no_answer, f"{len(no_answer)} requests got no answer: {no_answer[:3]}"
        wrong = [(o.status, o.detail) for o in outcomes if o.detail]
        assert not wrong, f"answers other than 201 / 503 problem+json: {wrong[:3]}"
        cut_only = [o for o in outcomes if o.started > cut_at + 0.5 and o.ended < restored_at]
        assert cut_only, "no request started and ended inside the cut"
        assert all(o.status == 503 for o in cut_only), (
            f"requests entirely inside the cut: {[o.status for o in cut_only]} (want only 503)"
        )
        after = [o for o in outcomes if o.started > restored_at]
        recovered = [o for o in after if o.status == 201]
        assert recovered, f"no 201 within 30 s of the restore: {[o.status for o in after][-10:]}"
        settled = [o for o in outcomes if o.started > recovered[0].ended]
        assert settled, "no request after the recovery"
        assert all(o.status == 201 for o in settled), (
            f"after the first 201 following the restore: {[o.status for o in settled]}"
        )

        acknowledged = [o.task_id for o in outcomes if o.task_id is not None]
        semaphore = asyncio.Semaphore(20)

        async def read(task_id: str) -> int:
            async with semaphore:
                r = await client.get(f"{app.base}/v1/tasks/{task_id}", headers=bearer(keys.writer))
                return r.status_code

        statuses = await asyncio.gather(*(read(t) for t in acknowledged))
    lost = [t for t, s in zip(acknowledged, statuses, strict=True) if s != 200]
    assert not lost, f"{len(lost)} of {len(acknowledged)} acknowledged tasks are not readable"


# --- Redis ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def redis_proxy(redis_target: RedisTarget) -> Iterator[TcpProxy]:
    parts = urlsplit(redis_target.url)
    with TcpProxy(parts.hostname or "127.0.0.1", parts.port or 6379) as proxy:
        yield proxy


@pytest.fixture(scope="module")
def app_over_redis_proxy(
    scale_db: str,
    redis_target: RedisTarget,
    redis_prefix: str,
    redis_proxy: TcpProxy,
    workdir: Path,
) -> Iterator[App]:
    parts = urlsplit(redis_target.url)
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = f"{userinfo}@" if userinfo else ""
    proxied = urlunsplit(parts._replace(netloc=f"{netloc}127.0.0.1:{redis_proxy.port}"))
    env = clean_env(
        workdir,
        DATABASE_URL=scale_db,
        REDIS_URL=proxied,
        REDIS_KEY_PREFIX=redis_prefix,
        PORT=str(free_port()),
        WORKERS="1",
        RATE_LIMIT_DEFAULT="5/minute",
        # Per hour, so that no attempt is refilled while a test runs, however slow the machine.
        RATE_LIMIT_LOGIN="10/hour",
        RATE_LIMIT_SIGNUP="3/hour",
    )
    (app,) = start_apps([env])
    try:
        yield app
    finally:
        app.stop()


@pytest.fixture
def redis_down(redis_proxy: TcpProxy, app_over_redis_proxy: App) -> Iterator[App]:
    """Redis cut for the test's body; restored afterwards whatever happens."""
    redis_proxy.cut()
    try:
        yield app_over_redis_proxy
    finally:
        redis_proxy.restore()


async def _ready_again(client: httpx.AsyncClient, base: str, seconds: float = 20) -> httpx.Response:
    deadline = time.monotonic() + seconds
    while True:
        r = await client.get(f"{base}/health/ready")
        if r.status_code == 200 or time.monotonic() > deadline:
            return r
        await asyncio.sleep(0.3)


async def test_readiness_names_redis_while_it_is_down(redis_down: App) -> None:
    async with httpx.AsyncClient(timeout=CLIENT_TIMEOUT) as client:
        r = await client.get(f"{redis_down.base}/health/ready")
    assert r.status_code == 503, r.text
    assert r.json()["checks"] == {"database": "ok", "redis": "failing"}


async def test_v1_is_served_while_redis_is_down(redis_down: App, keys: Keys) -> None:
    async with httpx.AsyncClient(timeout=CLIENT_TIMEOUT) as client:
        # More reads than the 5/minute limit: nothing can count them, so all pass.
        reads = [
            await client.get(f"{redis_down.base}/v1/tasks", headers=bearer(keys.outage))
            for _ in range(7)
        ]
        write = await client.post(
            f"{redis_down.base}/v1/tasks", json={"title": "no key"}, headers=bearer(keys.outage)
        )
    assert [r.status_code for r in reads] == [200] * 7, reads[-1].text
    assert write.status_code == 201, write.text


async def test_log_in_is_still_limited_while_redis_is_down(redis_down: App) -> None:
    """The default limit fails open without Redis; the log-in limits fall back to counting in
    the process, so password guessing is still capped (and a right password still works)."""
    body = {"email": "outage@example.com", "password": "not the password"}
    async with httpx.AsyncClient(timeout=CLIENT_TIMEOUT) as client:
        answers = [
            await client.post(f"{redis_down.base}/v1/auth/sessions", json=body) for _ in range(30)
        ]
    statuses = [r.status_code for r in answers]
    assert statuses == [401] * 10 + [429] * 20, statuses
    assert all(is_problem(r, 429) for r in answers[10:])
    assert all(r.headers.get("retry-after", "").isdigit() for r in answers[10:])


async def test_sign_up_is_still_limited_while_redis_is_down(redis_down: App) -> None:
    async with httpx.AsyncClient(timeout=CLIENT_TIMEOUT) as client:
        answers = [
            await client.post(
                f"{redis_down.base}/v1/users",
                json={"email": f"flood{n}@example.com", "password": "a fine passphrase"},
            )
            for n in range(6)
        ]
    assert [r.status_code for r in answers] == [201] * 3 + [429] * 3, answers[-1].text
    assert all(is_problem(r, 429) for r in answers[3:])


async def test_idempotent_post_is_503_while_redis_is_down(redis_down: App, keys: Keys) -> None:
    headers = {**bearer(keys.outage), "Idempotency-Key": "while-redis-is-down"}
    async with httpx.AsyncClient(timeout=CLIENT_TIMEOUT) as client:
        r = await client.post(
            f"{redis_down.base}/v1/tasks", json={"title": "keyed"}, headers=headers
        )
    assert is_problem(r, 503), (r.status_code, r.text)
    assert r.headers.get("retry-after", "").isdigit()


async def test_limits_apply_again_once_redis_is_back(
    redis_proxy: TcpProxy, app_over_redis_proxy: App, keys: Keys
) -> None:
    base = app_over_redis_proxy.base
    async with httpx.AsyncClient(timeout=CLIENT_TIMEOUT) as client:
        await asyncio.to_thread(redis_proxy.cut)
        try:
            # Break the app's pooled Redis connections, whatever it answers meanwhile.
            await client.get(f"{base}/v1/tasks", headers=bearer(keys.outage))
            assert (await client.get(f"{base}/health/ready")).status_code == 503
        finally:
            await asyncio.to_thread(redis_proxy.restore)
        ready = await _ready_again(client, base)
        assert ready.status_code == 200, ready.text
        statuses = [
            (await client.get(f"{base}/v1/tasks", headers=bearer(keys.fresh))).status_code
            for _ in range(8)
        ]
    assert statuses == [200] * 5 + [429] * 3, f"a fresh key under 5/minute got {statuses}"
