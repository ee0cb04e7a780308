"""The change stream on a real `taskhub serve` with two worker processes on PostgreSQL and Redis:
an event committed by one process reaches a stream held by the other within a second (Redis
pub/sub wakes it), and SIGTERM ends the stream, so the process exits without waiting for it."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.integration.backends import RedisTarget
from tests.integration.scale.processes import fresh_database
from tests.integration.test_serve import ROOT, TASKHUB, free_port, wait_healthy


@pytest.fixture
def served(
    postgres_url: str, redis_target: RedisTarget, tmp_path: Any
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    with fresh_database(postgres_url) as url:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_"))}
        env.update(
            DATABASE_URL=url,
            REDIS_URL=redis_target.url,
            REDIS_KEY_PREFIX=f"{redis_target.key_prefix}stream:",
            HOST="127.0.0.1",
            PORT=str(free_port()),
            WORKERS="2",
            LOG_FORMAT="json",
            PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"),
            SHUTDOWN_DRAIN_SECONDS="1",
            SERVE_WORKER="false",
        )
        subprocess.run([TASKHUB, "migrate"], env=env, cwd=ROOT, check=True, capture_output=True)
        proc = subprocess.Popen(
            [TASKHUB, "serve"], env=env, cwd=ROOT, stderr=subprocess.PIPE, start_new_session=True
        )
        base = f"http://127.0.0.1:{env['PORT']}"
        try:
            wait_healthy(base, proc)
            yield base, proc
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def test_a_commit_reaches_a_stream_on_another_process_within_a_second(
    served: tuple[str, subprocess.Popen[bytes]],
) -> None:
    base, proc = served
    with httpx.Client(base_url=base, timeout=10) as client:
        client.post("/v1/users", json={"email": "s@example.com", "password": "a long secret 1"})
        token = client.post(
            "/v1/auth/sessions", json={"email": "s@example.com", "password": "a long secret 1"}
        ).json()["token"]
        auth = {"Authorization": f"Bearer {token}"}
        received: list[tuple[float, str]] = []
        ended = threading.Event()

        def listen() -> None:
            # A connection of its own: the kernel hands it to either worker.
            with (
                httpx.Client(base_url=base, timeout=30) as own,
                own.stream("GET", "/v1/changes/stream?after=now", headers=auth) as response,
            ):
                assert response.status_code == 200
                for line in response.iter_lines():
                    if line.startswith("data: "):
                        received.append((time.monotonic(), line))
            ended.set()

        listener = threading.Thread(target=listen, daemon=True)
        listener.start()
        time.sleep(1.0)  # the stream is open and subscribed
        lags: list[float] = []
        for n in range(6):  # new connections: the writes land on both workers
            with httpx.Client(base_url=base, timeout=10) as writer:
                sent = time.monotonic()
                made = writer.post("/v1/tasks", json={"title": f"t{n}"}, headers=auth)
                assert made.status_code == 201, made.text
            deadline = time.monotonic() + 2
            while len(received) <= n and time.monotonic() < deadline:
                time.sleep(0.005)
            assert len(received) > n, f"event {n} did not arrive"
            assert made.json()["id"] in received[n][1]
            lags.append(received[n][0] - sent)
        assert max(lags) < 1.0, lags
        proc.send_signal(signal.SIGTERM)
        assert ended.wait(10), "the stream did not end at shutdown"
        assert proc.wait(timeout=30) == 0
