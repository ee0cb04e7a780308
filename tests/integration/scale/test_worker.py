"""Real `taskhub worker` processes: three on one PostgreSQL purge 10,000 expired sessions exactly
once while the one doing the work is killed with SIGKILL; one on SQLite purges and stops on
SIGTERM with status 0; `taskhub serve` runs the loop in-process only without SERVE_WORKER=false."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.scale.processes import (
    TASKHUB,
    asyncpg_dsn,
    clean_env,
    free_port,
    fresh_database,
    run_all,
    start_apps,
)

JOB = "purge_expired_sessions"
EXPIRED = 10_000
LIVE = 100


@dataclass
class WorkerProcess:
    """One `taskhub worker` in a process group of its own, its probes on `port`."""

    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    def samples(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        text = httpx.get(f"http://127.0.0.1:{self.port}/metrics", timeout=5).text
        return {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }

    def sample(self, name: str, **labels: str) -> float:
        return self.samples().get((name, tuple(sorted(labels.items()))), 0.0)

    def signal(self, signum: int) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signum)

    def stop(self) -> int:
        self.signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            self.proc.wait()
            raise

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def start_worker(env: Mapping[str, str], name: str) -> WorkerProcess:
    port = free_port()
    log = Path(env["TASKHUB_WORKDIR"]) / f"worker-{name}.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [TASKHUB, "worker"],
            env={**env, "WORKER_PORT": str(port)},
            cwd=env["TASKHUB_WORKDIR"],
            stdout=sink,
            stderr=sink,
            start_new_session=True,  # its own process group: killed as a whole
        )
    return WorkerProcess(proc, port, log)


def wait_live(worker: WorkerProcess, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if worker.proc.poll() is not None:
            raise AssertionError(f"the worker exited early:\n{worker.log_tail()}")
        try:
            if httpx.get(f"http://127.0.0.1:{worker.port}/health/live", timeout=1).is_success:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"the worker never answered /health/live:\n{worker.log_tail()}")


def wait_for(check: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.fixture
def workers() -> Iterator[list[WorkerProcess]]:
    started: list[WorkerProcess] = []
    yield started
    for worker in started:
        worker.signal(signal.SIGKILL)
        worker.proc.wait()


# --- PostgreSQL: three workers, one killed ------------------------------------------------------

SEED = f"""
CREATE TABLE purge_audit (session_id uuid NOT NULL);
CREATE FUNCTION audit_session_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO purge_audit VALUES (OLD.id);
    RETURN OLD;
END $$;
CREATE TRIGGER sessions_audit AFTER DELETE ON sessions
    FOR EACH ROW EXECUTE FUNCTION audit_session_delete();
INSERT INTO users (id, email, email_key, name, password_hash, created_at)
    VALUES ('{uuid.UUID(int=1)}', 'purge@example.com', 'purge@example.com', NULL, 'x', now());
INSERT INTO sessions (id, user_id, token_hash, created_at, expires_at, revoked_at)
    SELECT gen_random_uuid(), '{uuid.UUID(int=1)}', 'expired-' || n,
           now() - interval '40 days', now() - interval '30 days', NULL
    FROM generate_series(1, {EXPIRED}) AS n;
INSERT INTO sessions (id, user_id, token_hash, created_at, expires_at, revoked_at)
    SELECT gen_random_uuid(), '{uuid.UUID(int=1)}', 'live-' || n, now(), now() + interval '1 day',
           NULL
    FROM generate_series(1, {LIVE}) AS n;
"""


async def _query(url: str, sql: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        return list(await conn.fetch(sql))
    finally:
        await conn.close()


def query(url: str, sql: str) -> list[asyncpg.Record]:
    return asyncio.run(_query(url, sql))


def scalar(url: str, sql: str) -> object:
    return query(url, sql)[0][0]


def test_three_workers_purge_every_row_once_though_one_is_killed_midway(
    postgres_url: str, tmp_path: Path, workers: list[WorkerProcess]
) -> None:
    with fresh_database(postgres_url) as url:
        env = clean_env(
            tmp_path,
            DATABASE_URL=url,
            LOG_LEVEL="INFO",
            WORKER_POLL_SECONDS="0.2",
            WORKER_LEASE_SECONDS="2",
            DATABASE_STATEMENT_TIMEOUT_MS="1000",
            WORKER_BATCH_SIZE="10",
            SESSION_RETENTION_DAYS="7",
            SESSION_PURGE_INTERVAL_SECONDS="1",
        )
        run_all(env, [(["migrate"], None)])
        asyncio.run(_execute(url, SEED))
        seeded = {
            row[0]
            for row in query(url, "SELECT id FROM sessions WHERE token_hash LIKE 'expired-%'")
        }
        assert len(seeded) == EXPIRED

        workers.extend(start_worker(env, str(n)) for n in range(3))
        for worker in workers:
            wait_live(worker)
        by_pid = {worker.proc.pid: worker for worker in workers}

        # Kill whoever holds the job's lease once it is well into the work.
        def holder_midway() -> bool:
            done = int(str(scalar(url, "SELECT count(*) FROM purge_audit")))
            return 500 <= done < EXPIRED - 1000

        wait_for(holder_midway, 120, "the purge to get going")
        leased_by = str(scalar(url, f"SELECT leased_by FROM worker_jobs WHERE name = '{JOB}'"))
        victim = by_pid[int(leased_by.split(":")[1])]
        victim.signal(signal.SIGKILL)
        victim.proc.wait()
        time.sleep(0.5)  # its connection is gone and its open transaction rolled back
        by_victim = int(str(scalar(url, "SELECT count(*) FROM purge_audit")))
        assert 0 < by_victim < EXPIRED

        wait_for(
            lambda: (
                scalar(url, "SELECT count(*) FROM sessions WHERE token_hash LIKE 'expired-%'") == 0
            ),
            120,
            "the survivors to purge the rest",
        )
        survivors = [worker for worker in workers if worker is not victim]
        # Their last run has ended (the lease is free) before their counters are read.
        wait_for(
            lambda: (
                scalar(url, f"SELECT leased_by IS NULL FROM worker_jobs WHERE name = '{JOB}'")
                is True
            ),
            30,
            "the lease to be given back",
        )
        purged = query(url, "SELECT session_id, count(*) FROM purge_audit GROUP BY session_id")
        assert {row[0] for row in purged} == seeded  # every expired row went ...
        assert all(row[1] == 1 for row in purged)  # ... once
        assert scalar(url, "SELECT count(*) FROM sessions") == LIVE  # the live ones stay

        by_survivors = sum(
            w.sample("taskhub_worker_job_items_total", worker_job=JOB) for w in survivors
        )
        assert by_survivors == EXPIRED - by_victim  # the survivors finished the victim's share
        for worker in survivors:
            assert (
                worker.sample("taskhub_worker_job_runs_total", worker_job=JOB, outcome="failed")
                == 0
            )

            # Each worker reports the shared last success at its next look at the schedule.
            def reported(worker: WorkerProcess = worker) -> bool:
                last = worker.sample(
                    "taskhub_worker_job_last_success_timestamp_seconds", worker_job=JOB
                )
                return last > time.time() - 60

            wait_for(reported, 30, "every survivor to report the job's last success")
            assert worker.stop() == 0, worker.log_tail()
            assert '"level": "error"' not in worker.log.read_text(), worker.log_tail()


async def _execute(url: str, sql: str) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


# --- SQLite: the embedded default ---------------------------------------------------------------


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def seed_sqlite(path: Path, expired: int, live: int) -> None:
    now = datetime.now(UTC)
    user = str(uuid.UUID(int=1))
    with sqlite3.connect(path) as db:
        db.execute(
            "INSERT INTO users (id, email, email_key, name, password_hash, created_at) "
            "VALUES (?, 'purge@example.com', 'purge@example.com', NULL, 'x', ?)",
            (user, _iso(now)),
        )
        rows = [
            (
                str(uuid.uuid4()),
                user,
                f"expired-{n}",
                _iso(now - timedelta(days=40)),
                _iso(now - timedelta(days=30)),
            )
            for n in range(expired)
        ] + [
            (str(uuid.uuid4()), user, f"live-{n}", _iso(now), _iso(now + timedelta(days=1)))
            for n in range(live)
        ]
        db.executemany(
            "INSERT INTO sessions (id, user_id, token_hash, created_at, expires_at) "
            "VALUES (?, ?, ?, ?, ?)",
            rows,
        )


def sqlite_count(path: Path, sql: str) -> int:
    with sqlite3.connect(path) as db:
        return int(db.execute(sql).fetchone()[0])


def test_one_worker_on_sqlite_purges_and_stops_cleanly_on_sigterm(
    tmp_path: Path, workers: list[WorkerProcess]
) -> None:
    path = tmp_path / "taskhub.db"
    env = clean_env(
        tmp_path,
        DATABASE_URL=f"sqlite+aiosqlite:///{path}",
        LOG_LEVEL="INFO",
        WORKER_POLL_SECONDS="0.2",
        WORKER_BATCH_SIZE="100",
        SESSION_PURGE_INTERVAL_SECONDS="1",
    )
    run_all(env, [(["migrate"], None)])
    seed_sqlite(path, expired=1000, live=10)
    workers.append(worker := start_worker(env, "sqlite"))
    wait_live(worker)

    wait_for(lambda: sqlite_count(path, "SELECT count(*) FROM sessions") == 10, 60, "the purge")
    wait_for(
        lambda: worker.sample("taskhub_worker_job_items_total", worker_job=JOB) == 1000,
        10,
        "the items counter",
    )
    assert worker.sample("taskhub_worker_job_runs_total", worker_job=JOB, outcome="success") >= 1
    assert worker.sample("taskhub_worker_job_interval_seconds", worker_job=JOB) == 1
    assert worker.stop() == 0, worker.log_tail()
    assert "worker stopped" in worker.log.read_text()


# --- serve: the in-process loop -------------------------------------------------------------


@pytest.mark.parametrize("serve_worker", ["false", "true"])
def test_serve_runs_the_loop_unless_serve_worker_is_false(
    tmp_path: Path, serve_worker: str
) -> None:
    path = tmp_path / "taskhub.db"
    env = clean_env(
        tmp_path,
        DATABASE_URL=f"sqlite+aiosqlite:///{path}",
        PORT=str(free_port()),
        WORKERS="2",
        SERVE_WORKER=serve_worker,
        WORKER_POLL_SECONDS="0.2",
        SESSION_PURGE_INTERVAL_SECONDS="1",
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"),
    )
    run_all(env, [(["migrate"], None)])
    seed_sqlite(path, expired=50, live=5)
    [app] = start_apps([env])
    try:
        if serve_worker == "true":
            wait_for(
                lambda: sqlite_count(path, "SELECT count(*) FROM sessions") == 5, 30, "the purge"
            )
            metrics = httpx.get(f"{app.base}/metrics", timeout=5).text
            assert f'taskhub_worker_job_items_total{{worker_job="{JOB}"}} 50.0' in metrics
        else:
            time.sleep(2)  # ten polls of a loop, had one started
            assert sqlite_count(path, "SELECT count(*) FROM sessions") == 55
            assert sqlite_count(path, "SELECT count(*) FROM worker_jobs") == 0
            metrics = httpx.get(f"{app.base}/metrics", timeout=5).text
            assert "taskhub_worker_job_runs_total{" not in metrics
    finally:
        app.stop()
    assert app.proc.returncode == 0, app.log_tail()
