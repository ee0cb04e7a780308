"""A hung Redis (it accepts connections and never answers) costs a request one Redis timeout at
most, not one per Redis call: after a timeout, a worker fails its Redis calls at once for
REDIS_FAILURE_COOLDOWN seconds. Requests keep being served (limits fail open, the principal
cache falls back to the database).

Counted, not timed: each Redis call that waits for the hung server opens a connection to it (a
timed-out connection is dropped), so the number of connections it accepted is the number of
timeouts the requests paid.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.test_serve import ROOT, TASKHUB, free_port, wait_healthy


class HungRedis:
    """Accepts connections, reads whatever comes, never answers."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.accepted = 0
        self.held: list[socket.socket] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.accepted += 1
            self.held.append(conn)
            threading.Thread(target=self._swallow, args=(conn,), daemon=True).start()

    @staticmethod
    def _swallow(conn: socket.socket) -> None:
        try:
            while conn.recv(4096):
                pass
        except OSError:
            pass

    def close(self) -> None:
        self.listener.close()
        for conn in self.held:
            conn.close()


@pytest.fixture
def hung_redis() -> Iterator[HungRedis]:
    server = HungRedis()
    yield server
    server.close()


@pytest.mark.parametrize("workers", [1, 2])
def test_a_hung_redis_costs_a_request_at_most_one_timeout(
    tmp_path: Path, hung_redis: HungRedis, workers: int
) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_"))}
    env.update(
        DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/hung.db",
        HOST="127.0.0.1",
        PORT=str(port),
        LOG_FORMAT="json",
        LOG_LEVEL="ERROR",
    )
    run = {"env": env, "cwd": ROOT, "capture_output": True}
    assert subprocess.run([TASKHUB, "migrate"], **run).returncode == 0  # type: ignore[call-overload]
    created = subprocess.run(  # type: ignore[call-overload]
        [TASKHUB, "create-user", "hung@example.com", "--password-stdin"],
        input=b"long enough password\n",
        **run,
    )
    assert created.returncode == 0, created.stderr
    issued = subprocess.run(  # type: ignore[call-overload]
        [TASKHUB, "create-api-key", "hung@example.com", "--name", "k", "--scope", "tasks:read"],
        **run,
    )
    assert issued.returncode == 0, issued.stderr
    key = issued.stdout.decode().strip()
    serve_env = {
        **env,
        "WORKERS": str(workers),
        "REDIS_URL": f"redis://127.0.0.1:{hung_redis.port}/0",
        "REDIS_TIMEOUT": "1",
        "REDIS_FAILURE_COOLDOWN": "600",  # longer than the test: no call may try again
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
        # Only requests here: the in-process worker loop holds a wake-up subscription to Redis
        # of its own (a background connection no request waits on), which would be counted.
        "SERVE_WORKER": "false",
    }
    proc = subprocess.Popen(
        [TASKHUB, "serve"],
        env=serve_env,
        cwd=ROOT,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, proc)
        assert hung_redis.accepted == 0  # /health does not touch Redis
        with httpx.Client(base_url=base, timeout=60) as client:
            for _ in range(4 * workers):
                # A fresh connection each time, so that both workers get requests.
                response = client.get(
                    "/v1/tasks", headers={"Authorization": f"Bearer {key}", "Connection": "close"}
                )
                assert response.status_code == 200, response.text
        # One timeout per worker opens its breaker; every later call fails at once.
        assert hung_redis.accepted <= workers, hung_redis.accepted
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)  # the workers too, not only the supervisor
            proc.wait()
