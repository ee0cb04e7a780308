"""Webhook deliveries under faults, made by real `taskhub worker` processes on PostgreSQL to a
local receiver: two workers never send one attempt twice; a worker killed mid-attempt leaves a
lease that runs out, then another one sends the same `webhook-id`; a receiver that is down is
tried again on the retry schedule until it answers; PostgreSQL cut away mid-run loses nothing.
The deliveries come from tasks created over HTTP, so the fan-out job runs too."""

from __future__ import annotations

import asyncio
import json
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import pairwise
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import httpx
import pytest
from sqlalchemy.engine import make_url
from standardwebhooks.webhooks import Webhook as Verifier

from app.container import _delivery_lease
from app.settings import Settings
from tests.integration.scale.processes import (
    PASSWORD,
    App,
    asyncpg_dsn,
    clean_env,
    free_port,
    start_apps,
)
from tests.integration.scale.tcp_proxy import TcpProxy
from tests.integration.scale.test_worker import WorkerProcess, start_worker, wait_live

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

ATTEMPTS = "taskhub_webhook_attempts_total"


# --- the receiver ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Hit:
    webhook_id: str
    headers: dict[str, str]
    body: bytes
    at: float  # wall-clock time it arrived (the workers' clock: same host)


# What to do with a request, given its webhook-id and how often that id came (this time
# included): a status to answer, or None to hang without answering. It runs in the request's
# thread, so it may also block for a while.
Behaviour = Callable[[str, int], int | None]


class Receiver:
    """A threaded HTTP server on 127.0.0.1 that records every POST and answers as `behaviour`
    says. `stop()` closes its port (connections are refused); `start()` opens the same port."""

    def __init__(self) -> None:
        self.behaviour: Behaviour = lambda _id, _seen: 204
        self.port = 0
        self._hits: list[Hit] = []
        self._lock = threading.Lock()
        self._unhang = threading.Event()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def hits(self) -> list[Hit]:
        with self._lock:
            return list(self._hits)

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                headers = {name.lower(): value for name, value in self.headers.items()}
                status = receiver._arrived(
                    Hit(headers.get("webhook-id", ""), headers, body, time.time())
                )
                if status is None:
                    receiver._unhang.wait(120)
                    return  # hang up without an answer
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet."""

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = int(server.server_address[1])
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        self._server = server
        return self

    def _arrived(self, hit: Hit) -> int | None:
        with self._lock:
            self._hits.append(hit)
            seen = sum(1 for h in self._hits if h.webhook_id == hit.webhook_id)
        return self.behaviour(hit.webhook_id, seen)

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()

    def close(self) -> None:
        self._unhang.set()
        self.stop()


class HoldOne:
    """A behaviour that answers 204, except that the `nth` request waits until `release()`."""

    def __init__(self, nth: int) -> None:
        self._nth = nth
        self._count = 0
        self._lock = threading.Lock()
        self._go = threading.Event()
        self.arrived = threading.Event()
        self.held: str | None = None

    def __call__(self, webhook_id: str, seen: int) -> int:
        with self._lock:
            self._count += 1
            mine = self._count == self._nth
            if mine:
                self.held = webhook_id
        if mine:
            self.arrived.set()
            self._go.wait(60)
        return 204

    def release(self) -> None:
        self._go.set()


def verify(secret: str, hits: list[Hit]) -> None:
    for hit in hits:
        Verifier(secret).verify(hit.body, hit.headers)  # raises when the signature is wrong


def task_of(payload: str | bytes) -> str:
    """The task a `task.created` delivery is about."""
    return str(json.loads(payload)["data"]["resource"]["id"])


# --- the API, the database and the workers -----------------------------------------------------


@pytest.fixture(scope="module")
def app(scale_db: str, workdir: Path) -> Iterator[App]:
    """The HTTP API, without a worker loop of its own: only the test's workers deliver."""
    env = clean_env(
        workdir,
        DATABASE_URL=scale_db,
        PORT=str(free_port()),
        WORKERS="1",
        SERVE_WORKER="false",
        WEBHOOK_ALLOW_HTTP="true",
        WEBHOOK_ALLOW_PRIVATE_TARGETS="true",
        RATE_LIMIT_DEFAULT="100000/minute",
        RATE_LIMIT_SIGNUP="1000/hour",
    )
    (started,) = start_apps([env])
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture
def owner(app: App) -> Iterator[httpx.Client]:
    """A new user's session over HTTP; their webhooks (and deliveries) go afterwards, so that no
    later test's workers try them."""
    email = f"hooks-{uuid.uuid4().hex[:8]}@example.com"
    with httpx.Client(base_url=app.base, timeout=15) as anonymous:
        signed_up = anonymous.post("/v1/users", json={"email": email, "password": PASSWORD})
        assert signed_up.status_code == 201, signed_up.text
        session = anonymous.post("/v1/auth/sessions", json={"email": email, "password": PASSWORD})
        assert session.status_code == 201, session.text
    auth = {"Authorization": f"Bearer {session.json()['token']}"}
    with httpx.Client(base_url=app.base, timeout=15, headers=auth) as client:
        yield client
        for hook in client.get("/v1/webhooks").json()["items"]:
            client.delete(f"/v1/webhooks/{hook['id']}")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    started = Receiver().start()
    yield started
    started.close()


@pytest.fixture
def workers() -> Iterator[list[WorkerProcess]]:
    started: list[WorkerProcess] = []
    yield started
    for worker in started:
        worker.signal(signal.SIGKILL)
        worker.proc.wait()


def worker_env(workdir: Path, database_url: str, **settings: str) -> dict[str, str]:
    """Fast polls, job leases that run out in 2 s, HTTP to loopback allowed, short attempts."""
    defaults = {
        "LOG_LEVEL": "INFO",
        "WORKER_POLL_SECONDS": "0.2",
        "WORKER_LEASE_SECONDS": "2",
        "DATABASE_STATEMENT_TIMEOUT_MS": "1000",
        "SQLALCHEMY_POOL_SIZE": "3",
        "SQLALCHEMY_POOL_TIMEOUT": "2",
        "WEBHOOK_ALLOW_HTTP": "true",
        "WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",
        "WEBHOOK_TIMEOUT": "2",
        "WEBHOOK_RETRY_SCHEDULE": "1s,1s,2s",
        "WEBHOOK_CONCURRENCY": "3",
    }
    return clean_env(workdir, DATABASE_URL=database_url, **{**defaults, **settings})


def start_workers(env: dict[str, str], count: int, into: list[WorkerProcess]) -> None:
    first = len(into)
    into.extend(start_worker(env, str(first + n)) for n in range(count))
    for worker in into:
        wait_live(worker)


def lease_seconds(timeout: str) -> float:
    """How long a worker holds a delivery it attempts (for `WEBHOOK_TIMEOUT=timeout`)."""
    return _delivery_lease(Settings(WEBHOOK_TIMEOUT=float(timeout))).total_seconds()


def subscribe(owner: httpx.Client, url: str) -> tuple[str, str]:
    """A webhook on `task.created` of every project the owner can read: (id, secret)."""
    made = owner.post("/v1/webhooks", json={"url": url, "events": ["task.created"]})
    assert made.status_code == 201, made.text
    return made.json()["id"], made.json()["secret"]


def create_tasks(owner: httpx.Client, count: int, label: str) -> list[str]:
    """`count` tasks in the owner's inbox in one batch (one `task.created` event each)."""
    operations = [{"op": "create", "data": {"title": f"{label} {n}"}} for n in range(count)]
    answer = owner.post("/v1/tasks/batch", json={"operations": operations})
    assert answer.status_code == 200, answer.text
    return [result["task"]["id"] for result in answer.json()["results"]]


def deliveries(owner: httpx.Client, hook_id: str) -> list[dict[str, Any]]:
    answer = owner.get(f"/v1/webhooks/{hook_id}/deliveries", params={"limit": 200})
    assert answer.status_code == 200, answer.text
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


def all_succeeded(owner: httpx.Client, hook_id: str, count: int) -> Callable[[], bool]:
    def check() -> bool:
        found = deliveries(owner, hook_id)
        return len(found) == count and all(d["status"] == "succeeded" for d in found)

    return check


async def _fetch(url: str, sql: str, *args: object) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


@dataclass(frozen=True)
class Row:
    id: str
    status: str
    attempts: int
    task_id: str
    leased_by: str | None
    leased_until: datetime | None


def delivery_rows(database_url: str, hook_id: str) -> list[Row]:
    """The webhook's deliveries as stored, with what the API does not show (the lease). A
    delivery keeps its payload by reference to its event while the event is kept: its task is
    then the event's resource."""
    records = asyncio.run(
        _fetch(
            database_url,
            "SELECT d.id::text AS id, d.status, d.attempts, d.leased_by, d.leased_until, "
            "coalesce(d.payload::json->'data'->'resource'->>'id', e.resource_id::text) AS task "
            "FROM webhook_deliveries d LEFT JOIN events e ON e.id = d.event_id "
            "WHERE d.webhook_id::text = $1",
            hook_id,
        )
    )
    return [
        Row(
            r["id"],
            r["status"],
            r["attempts"],
            r["task"],
            r["leased_by"],
            r["leased_until"],
        )
        for r in records
    ]


def pipeline_state(database_url: str) -> str:
    """Where the events stand on their way to the receiver, and the server's oldest open
    transaction (the change feed shows no event newer than it)."""
    [state] = asyncio.run(
        _fetch(
            database_url,
            "SELECT (SELECT count(*) FROM events) AS events, "
            "(SELECT max(txid) FROM events) AS newest_txid, "
            "(SELECT position FROM webhook_fan_out) AS fan_out_position, "
            "(SELECT string_agg(status || '=' || n, ' ') FROM (SELECT status, count(*) AS n "
            "FROM webhook_deliveries GROUP BY status) AS d) AS deliveries, "
            "(SELECT string_agg(name || ' leased by ' || leased_by, ', ') FROM worker_jobs "
            "WHERE leased_until > now()) AS job_leases, "
            "(SELECT datname || ' pid ' || pid || ' xid ' || backend_xid || ' open for ' "
            "|| (now() - xact_start) FROM pg_stat_activity WHERE backend_xid IS NOT NULL "
            "ORDER BY xact_start LIMIT 1) AS oldest_transaction",
        )
    )
    return ", ".join(f"{name}: {value}" for name, value in state.items())


def wait_until(
    check: Callable[[], bool], seconds: float, what: str, database_url: str | None = None
) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            state = pipeline_state(database_url) if database_url else ""
            raise AssertionError(f"timed out after {seconds:g} s waiting for {what}; {state}")
        time.sleep(0.1)


# --- the tests -----------------------------------------------------------------------------------


def test_two_workers_send_each_delivery_exactly_once(
    owner: httpx.Client,
    receiver: Receiver,
    workers: list[WorkerProcess],
    scale_db: str,
    tmp_path: Path,
) -> None:
    def slow_204(_id: str, _seen: int) -> int:
        time.sleep(0.05)  # attempts overlap, so both workers claim while the other sends
        return 204

    receiver.behaviour = slow_204
    start_workers(worker_env(tmp_path, scale_db, WEBHOOK_CONCURRENCY="2"), 2, workers)
    hook_id, secret = subscribe(owner, receiver.url)
    tasks = create_tasks(owner, 60, "once")

    wait_until(all_succeeded(owner, hook_id, 60), 60, "every delivery to succeed", scale_db)
    rows = delivery_rows(scale_db, hook_id)
    assert sorted(row.task_id for row in rows) == sorted(tasks)  # one delivery per event
    assert all(row.attempts == 1 and row.leased_by is None for row in rows)
    hits = receiver.hits()
    assert Counter(hit.webhook_id for hit in hits) == {row.id: 1 for row in rows}
    assert sorted(task_of(hit.body) for hit in hits) == sorted(tasks)
    verify(secret, hits)
    sent = [worker.sample(ATTEMPTS, outcome="success") for worker in workers]
    assert sum(sent) == 60
    assert all(n > 0 for n in sent), f"both workers should have delivered: {sent}"


def test_a_worker_killed_mid_delivery_leaves_it_to_another_with_the_same_webhook_id(
    owner: httpx.Client,
    receiver: Receiver,
    workers: list[WorkerProcess],
    scale_db: str,
    tmp_path: Path,
) -> None:
    timeout = "3"  # the window for the kill: the attempt is still running
    receiver.behaviour = lambda _id, seen: None if seen == 1 else 204
    start_workers(worker_env(tmp_path, scale_db, WEBHOOK_TIMEOUT=timeout), 2, workers)
    hook_id, secret = subscribe(owner, receiver.url)
    [task] = create_tasks(owner, 1, "killed")

    wait_until(lambda: len(receiver.hits()) >= 1, 60, "the first attempt", scale_db)
    [row] = delivery_rows(scale_db, hook_id)
    assert len(receiver.hits()) == 1, "another worker sent it while the first attempt ran"
    assert row.status == "pending", row
    assert row.leased_by is not None, row
    assert row.leased_until is not None, row
    by_pid = {worker.proc.pid: worker for worker in workers}
    victim = by_pid[int(row.leased_by.split(":")[1])]
    victim.signal(signal.SIGKILL)
    victim.proc.wait()
    [survivor] = [worker for worker in workers if worker is not victim]
    # The attempt was cut off before it was recorded: still pending, still leased.
    [after_kill] = delivery_rows(scale_db, hook_id)
    assert (after_kill.status, after_kill.attempts) == ("pending", 0), after_kill

    wait_until(
        lambda: len(receiver.hits()) >= 2,
        lease_seconds(timeout) + 30,
        "another worker's attempt",
        scale_db,
    )
    wait_until(all_succeeded(owner, hook_id, 1), 30, "the delivery to succeed", scale_db)
    first, second = receiver.hits()
    assert first.webhook_id == second.webhook_id == row.id
    assert first.body == second.body
    assert task_of(second.body) == task
    assert second.at >= row.leased_until.timestamp() - 0.1, "redelivered before the lease ran out"
    verify(secret, [first, second])
    [delivery] = deliveries(owner, hook_id)
    detail = owner.get(f"/v1/webhooks/{hook_id}/deliveries/{delivery['id']}").json()
    # The killed attempt left no record; the log holds the survivor's success.
    assert [(a["response_status"], a["error"]) for a in detail["attempts"]] == [(204, None)]
    assert detail["attempt_count"] == 1
    assert survivor.sample(ATTEMPTS, outcome="success") == 1


def test_a_receiver_that_is_down_is_retried_on_the_schedule_until_it_answers(
    owner: httpx.Client,
    receiver: Receiver,
    workers: list[WorkerProcess],
    scale_db: str,
    tmp_path: Path,
) -> None:
    wait = 1.0
    schedule = ",".join(["1s"] * 5)
    receiver.behaviour = lambda _id, seen: 500 if seen == 1 else 204
    hook_id, secret = subscribe(owner, receiver.url)
    receiver.stop()  # connections to its port are refused from now on
    start_workers(worker_env(tmp_path, scale_db, WEBHOOK_RETRY_SCHEDULE=schedule), 1, workers)
    tasks = create_tasks(owner, 2, "down")

    def each_refused() -> bool:
        found = deliveries(owner, hook_id)
        return len(found) == 2 and all(d["attempt_count"] >= 1 for d in found)

    wait_until(each_refused, 30, "a refused attempt of each delivery", scale_db)
    receiver.start()  # back, answering 500 once per delivery, then 204
    wait_until(all_succeeded(owner, hook_id, 2), 30, "both deliveries to succeed", scale_db)

    for delivery in deliveries(owner, hook_id):
        detail = owner.get(f"/v1/webhooks/{hook_id}/deliveries/{delivery['id']}").json()
        attempts = detail["attempts"]
        refused, failed, succeeded = attempts[:-2], attempts[-2], attempts[-1]
        assert refused, attempts
        assert all(a["response_status"] is None for a in refused), attempts
        assert all(a["error"].startswith("connection failed") for a in refused), attempts
        assert (failed["response_status"], failed["error"]) == (500, "answered 500")
        assert (succeeded["response_status"], succeeded["error"]) == (204, None)
        assert len(attempts) <= 1 + len(schedule.split(","))
        assert detail["attempt_count"] == len(attempts)
        assert detail["next_attempt_at"] is None
        started = [datetime.fromisoformat(a["attempted_at"]) for a in attempts]
        gaps = [(b - a).total_seconds() for a, b in pairwise(started)]
        assert all(wait <= gap < wait + 5 for gap in gaps), f"not on the schedule: {gaps}"

    hits = receiver.hits()
    rows = delivery_rows(scale_db, hook_id)
    assert sorted(row.task_id for row in rows) == sorted(tasks)
    assert Counter(hit.webhook_id for hit in hits) == {row.id: 2 for row in rows}
    verify(secret, hits)


def test_postgres_cut_mid_run_loses_no_delivery(
    owner: httpx.Client,
    receiver: Receiver,
    workers: list[WorkerProcess],
    scale_db: str,
    tmp_path: Path,
) -> None:
    """The workers reach PostgreSQL through a proxy that is cut while an attempt is under way
    (so its outcome cannot be recorded) and while more events are written; the API keeps its
    own connection."""
    timeout = "3"
    hold = HoldOne(nth=10)
    receiver.behaviour = hold
    target = make_url(scale_db)
    with TcpProxy(target.host or "127.0.0.1", target.port or 5432) as proxy:
        proxied = target.set(host="127.0.0.1", port=proxy.port).render_as_string(False)
        start_workers(worker_env(tmp_path, proxied, WEBHOOK_TIMEOUT=timeout), 2, workers)
        hook_id, secret = subscribe(owner, receiver.url)
        tasks = create_tasks(owner, 30, "before")

        assert hold.arrived.wait(60), "the deliveries did not get under way"
        proxy.cut()
        hold.release()  # answered, but the worker cannot record it
        tasks += create_tasks(owner, 30, "during")
        time.sleep(3)  # the outage
        proxy.restore()
        tasks += create_tasks(owner, 30, "after")

        wait_until(
            all_succeeded(owner, hook_id, 90),
            lease_seconds(timeout) + 60,
            "every delivery to succeed",
            scale_db,
        )
    rows = delivery_rows(scale_db, hook_id)
    assert sorted(row.task_id for row in rows) == sorted(tasks)  # none lost, none doubled
    assert all(row.status == "succeeded" for row in rows)
    hits = receiver.hits()
    assert {hit.webhook_id for hit in hits} == {row.id for row in rows}
    bodies: dict[str, set[bytes]] = {}
    for hit in hits:
        bodies.setdefault(hit.webhook_id, set()).add(hit.body)
    assert all(len(sent) == 1 for sent in bodies.values())  # a repeat is the same delivery
    # The attempt answered during the cut was made again after its lease, with the same id.
    assert Counter(hit.webhook_id for hit in hits)[hold.held or ""] >= 2
    verify(secret, hits)
    logs = "".join(worker.log.read_text(errors="replace") for worker in workers)
    assert "job step failed" in logs or "worker tick failed" in logs
