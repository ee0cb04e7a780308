"""Three `taskhub serve` replicas (2 workers each) sharing one PostgreSQL and one Redis: a rate
limit and an Idempotency-Key hold across all of them (issue 5, acceptance 1 and 3)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.integration.backends import RedisTarget
from tests.integration.scale.processes import clean_env, create_accounts, free_port, start_apps

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

LIMIT = 50
WINDOW_SECONDS = 60
INTERVAL_SECONDS = WINDOW_SECONDS / LIMIT  # GCRA: one request refills every 1.2 s
PROBLEM_JSON = "application/problem+json"


@dataclass(frozen=True)
class Cluster:
    bases: tuple[str, ...]
    reader_key: str  # tasks:read, for the rate-limit burst only
    writer_key: str  # tasks:read, tasks:write, keys:manage (another user)
    issuer_key: str  # tasks:read, keys:manage (a third user: its own budget)


@pytest.fixture(scope="module")
def cluster(
    scale_db: str, redis_target: RedisTarget, redis_prefix: str, workdir: Path
) -> Iterator[Cluster]:
    common = {
        "DATABASE_URL": scale_db,
        "REDIS_URL": redis_target.url,
        "REDIS_KEY_PREFIX": redis_prefix,
        "RATE_LIMIT_DEFAULT": f"{LIMIT}/minute",
        "WORKERS": "2",
        # 3 replicas x 2 workers x 5 connections stays well under max_connections=100.
        "SQLALCHEMY_POOL_SIZE": "3",
        "SQLALCHEMY_POOL_OVERFLOW": "2",
        "SQLALCHEMY_POOL_TIMEOUT": "15",
        # Six workers and the client share two cores here: a 0.5 s Redis timeout fires under a
        # burst from CPU starvation alone, and the limiter would fail open.
        "REDIS_TIMEOUT": "5",
    }
    envs = [
        clean_env(
            workdir,
            **common,
            PORT=str(free_port()),
            PROMETHEUS_MULTIPROC_DIR=str(workdir / f"metrics-{i}"),
        )
        for i in range(3)
    ]
    wanted = {
        "limit@example.com": [["tasks:read"]],
        "idem@example.com": [["tasks:read", "tasks:write", "keys:manage"]],
        "lineage@example.com": [["tasks:read", "keys:manage"]],
    }
    # Accounts are made by the CLI while the replicas boot (both are slow on a small machine).
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        accounts = pool.submit(create_accounts, clean_env(workdir, **common), wanted)
        apps = start_apps(envs)
        try:
            keys = accounts.result(timeout=180)
        except BaseException:
            for app in apps:
                app.stop()
            raise
    try:
        yield Cluster(
            bases=tuple(app.base for app in apps),
            reader_key=keys["limit@example.com"][0],
            writer_key=keys["idem@example.com"][0],
            issuer_key=keys["lineage@example.com"][0],
        )
    finally:
        for app in apps:
            app.stop()


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def client_for(concurrency: int) -> httpx.AsyncClient:
    # No keep-alive: a pooled connection the server closes while idle would fail a request
    # for a reason that has nothing to do with the service under test.
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=0)
    return httpx.AsyncClient(limits=limits, timeout=60)


def is_problem(response: httpx.Response, status: int) -> bool:
    return response.headers.get("content-type", "").startswith(PROBLEM_JSON) and bool(
        response.json().get("status") == status
    )


async def test_three_replicas_share_one_rate_limit(cluster: Cluster) -> None:
    total = 300
    async with client_for(total) as client:
        started = time.monotonic()
        responses = await asyncio.gather(
            *(
                client.get(
                    f"{cluster.bases[i % len(cluster.bases)]}/v1/tasks",
                    headers=bearer(cluster.reader_key),
                )
                for i in range(total)
            )
        )
        burst = time.monotonic() - started

    admitted = sum(r.status_code == 200 for r in responses)
    # Over any span of t seconds GCRA admits at most LIMIT + floor(t / interval); the server saw
    # the burst within the client's measured span, so that span gives a safe upper bound.
    refill = int(burst // INTERVAL_SECONDS)
    assert LIMIT <= admitted <= LIMIT + refill, (
        f"{admitted} of {total} admitted; a shared {LIMIT}/minute limit admits a burst of "
        f"{LIMIT} plus one per {INTERVAL_SECONDS} s, and the burst took {burst:.1f} s, so "
        f"between {LIMIT} and {LIMIT + refill}"
    )
    others = [r for r in responses if r.status_code != 200]
    bad = [
        (r.status_code, r.headers.get("retry-after"), r.text[:200])
        for r in others
        if r.status_code != 429
        or not r.headers.get("retry-after", "").isdigit()
        or int(r.headers["retry-after"]) < 1
        or not is_problem(r, 429)
    ]
    assert not bad, f"{len(bad)} refusals are not 429 problem+json with Retry-After: {bad[:5]}"


async def test_one_idempotency_key_creates_one_task_across_replicas(cluster: Cluster) -> None:
    # One user's requests share one budget (LIMIT per minute): 40 racing creates, a replay and
    # three lists stay inside it.
    total = 40
    bases = cluster.bases
    async with client_for(total) as client:
        body = {"title": "exactly once", "priority": 2, "labels": ["scale"]}
        idempotency_key = f"scale-{uuid.uuid4()}"

        def post(i: int) -> asyncio.Future[httpx.Response]:
            headers = {**bearer(cluster.writer_key), "Idempotency-Key": idempotency_key}
            return asyncio.ensure_future(
                client.post(f"{bases[i % len(bases)]}/v1/tasks", json=body, headers=headers)
            )

        responses = await asyncio.gather(*(post(i) for i in range(total)))
        replay = await post(total)
        listed = [
            await client.get(f"{base}/v1/tasks", headers=bearer(cluster.writer_key))
            for base in bases
        ]

    unexpected = [
        (r.status_code, r.text[:200]) for r in responses if r.status_code not in {201, 409}
    ]
    assert not unexpected, f"answers other than 201/409: {unexpected[:5]}"
    created = [r for r in responses if r.status_code == 201]
    originals = [r for r in created if r.headers.get("idempotent-replayed") != "true"]
    assert len(originals) == 1, f"{len(originals)} requests created a task (want exactly 1)"
    first = originals[0].json()
    assert all(r.json() == first for r in created), "a replayed 201 differs from the first"
    assert {r.headers.get("location") for r in created} == {f"/v1/tasks/{first['id']}"}
    conflicts = [r for r in responses if r.status_code == 409]
    assert all(is_problem(r, 409) for r in conflicts), conflicts[0].text if conflicts else ""

    assert replay.status_code == 201, replay.text
    assert replay.headers.get("idempotent-replayed") == "true"
    assert replay.json() == first
    for page in listed:
        assert page.status_code == 200, page.text
        assert [task["id"] for task in page.json()["items"]] == [first["id"]]


async def test_revoking_a_key_stops_the_keys_it_issued_on_every_replica(cluster: Cluster) -> None:
    first, second, third = cluster.bases
    async with client_for(4) as client:

        async def issue(base: str, secret: str, name: str) -> dict[str, str]:
            body = {"name": name, "scopes": ["tasks:read", "keys:manage"]}
            r = await client.post(f"{base}/v1/api-keys", json=body, headers=bearer(secret))
            assert r.status_code == 201, r.text
            issued: dict[str, str] = r.json()
            return issued

        child = await issue(first, cluster.issuer_key, f"child-{uuid.uuid4().hex[:6]}")
        grandchild = await issue(second, child["key"], "grandchild")
        assert grandchild["created_by_key_id"] == child["id"]
        # Every replica resolves both keys once, so the shared principal cache holds them.
        for base in cluster.bases:
            for key in (child, grandchild):
                r = await client.get(f"{base}/v1/tasks?limit=1", headers=bearer(key["key"]))
                assert r.status_code == 200, r.text

        r = await client.delete(
            f"{third}/v1/api-keys/{child['id']}", headers=bearer(cluster.issuer_key)
        )
        assert r.status_code == 204, r.text

        statuses = [
            (await client.get(f"{base}/v1/tasks?limit=1", headers=bearer(key["key"]))).status_code
            for base in cluster.bases
            for key in (child, grandchild)
        ]
    assert statuses == [401] * 6
