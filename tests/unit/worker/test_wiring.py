"""The worker as the container wires it, and in the served app's lifespan: runs there only when
asked (the served entry asks unless SERVE_WORKER=false)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from litestar.testing import TestClient

from adapters.memory.jobs import MemoryJobSchedule
from app.container import build_container
from app.factory import create_app
from app.settings import SettingsError, load_settings
from domain.auth import Session

ENV = {"DATABASE_URL": "memory://", "LOG_FORMAT": "json", "WORKER_POLL_SECONDS": "0.05"}


def expired_session() -> Session:
    now = datetime.now(UTC)
    return Session(
        id="00000000-0000-7000-8000-000000000001",
        user_id="00000000-0000-7000-8000-000000000000",
        token_hash="hash",
        created_at=now - timedelta(days=40),
        expires_at=now - timedelta(days=30),
    )


@pytest.mark.parametrize("run_worker", [True, False])
def test_the_app_runs_the_worker_loop_only_when_asked(run_worker: bool) -> None:
    settings = load_settings(environ=ENV, dotenv_path=None)
    container = build_container(settings)
    gone = expired_session()
    container.memory_database().tables["sessions"][gone.id] = gone
    schedule = container.job_schedule()
    assert isinstance(schedule, MemoryJobSchedule)

    with TestClient(create_app(settings, container, run_worker=run_worker)) as client:
        assert client.get("/health").status_code == 200
        deadline = time.monotonic() + 5
        while run_worker and container.memory_database().tables["sessions"]:
            assert time.monotonic() < deadline, "the in-process worker never purged"
            time.sleep(0.02)
        time.sleep(0.2)

    sessions = container.memory_database().tables["sessions"]
    if run_worker:
        assert sessions == {}
        assert schedule.rows["purge_expired_sessions"].last_success_at is not None
        assert container.worker().stopping  # stopped with the app
    else:
        assert gone.id in sessions
        assert schedule.rows == {}


def test_the_worker_settings_and_their_defaults() -> None:
    settings = load_settings(environ={}, dotenv_path=None)
    assert settings.SERVE_WORKER is True
    assert settings.WORKER_PORT == 8001
    assert settings.SESSION_RETENTION_DAYS == 7
    assert settings.SESSION_PURGE_INTERVAL_SECONDS == 3600
    assert settings.TRASH_RETENTION_DAYS == 30
    assert settings.TRASH_PURGE_INTERVAL_SECONDS == 3600
    off = load_settings(environ={"SERVE_WORKER": "false"}, dotenv_path=None)
    assert off.SERVE_WORKER is False
    assert settings.EVENT_RETENTION_DAYS == 30
    assert settings.EVENT_PURGE_INTERVAL_SECONDS == 3600
    container = build_container(settings)
    jobs = [(job.name, job.interval, job.exclusive) for job in container.worker_jobs()]
    assert jobs == [
        ("purge_expired_sessions", timedelta(hours=1), True),
        ("webhook_fan_out", timedelta(seconds=5), True),
        ("webhook_deliveries", timedelta(seconds=5), False),
        ("purge_webhook_deliveries", timedelta(hours=1), True),
        ("purge_trash", timedelta(hours=1), True),
        ("purge_old_events", timedelta(hours=1), True),
    ]


def test_a_lease_shorter_than_two_statement_timeouts_is_refused() -> None:
    with pytest.raises(SettingsError, match="WORKER_LEASE_SECONDS"):
        load_settings(
            environ={"WORKER_LEASE_SECONDS": "9", "DATABASE_STATEMENT_TIMEOUT_MS": "5000"},
            dotenv_path=None,
        )


def test_the_cli_has_a_worker_command() -> None:
    from app.cli import build_parser

    assert build_parser().parse_args(["worker"]).command == "worker"


async def test_the_webhook_jobs_wake_on_a_commit_that_wrote_events() -> None:
    env = {**ENV, "WORKER_POLL_SECONDS": "3600"}
    container = build_container(load_settings(environ=env, dotenv_path=None))
    woken = {job.name for job in container.worker_jobs() if job.wake_on_events}
    assert woken == {"webhook_fan_out", "webhook_deliveries"}
    worker, schedule = container.worker(), container.job_schedule()
    assert isinstance(schedule, MemoryJobSchedule)
    fanned_out = asyncio.Event()
    release = schedule.release

    async def noting_release(name: str, holder: str, **when: Any) -> None:
        await release(name, holder, **when)
        if name == "webhook_fan_out":
            fanned_out.set()

    schedule.release = noting_release  # type: ignore[method-assign]
    running = asyncio.create_task(worker.run())
    try:
        await asyncio.wait_for(fanned_out.wait(), timeout=30)  # the first tick
        fanned_out.clear()
        await asyncio.sleep(0.01)  # the loop waits, an hour's poll ahead
        container.events_committed()(1)  # what the unit of work calls after such a commit
        await asyncio.wait_for(fanned_out.wait(), timeout=30)  # only a wake-up brings it
    finally:
        worker.stop()
        await asyncio.wait_for(running, timeout=30)
