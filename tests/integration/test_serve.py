"""`taskhub serve` as a real process: it starts, answers, drains on SIGTERM and ends cleanly."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
TASKHUB = str(Path(sys.executable).parent / "taskhub")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_healthy(base: str, proc: subprocess.Popen[bytes], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited early with {proc.returncode}")
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError("server did not become healthy")


@pytest.fixture
def server_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_"))}
    env.update(
        DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/serve.db",
        HOST="127.0.0.1",
        PORT=str(free_port()),
        LOG_FORMAT="json",
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"),
        SHUTDOWN_DRAIN_SECONDS="0",
    )
    subprocess.run([TASKHUB, "migrate"], env=env, cwd=ROOT, check=True, capture_output=True)
    return env


@pytest.fixture(params=[1, 2], ids=["1-worker", "2-workers"])
def server(
    request: pytest.FixtureRequest, server_env: dict[str, str]
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    env = {**server_env, "WORKERS": str(request.param)}
    proc = subprocess.Popen(
        [TASKHUB, "serve"], env=env, cwd=ROOT, stderr=subprocess.PIPE, start_new_session=True
    )
    base = f"http://127.0.0.1:{env['PORT']}"
    try:
        wait_healthy(base, proc)
        yield base, proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)  # the workers too, not only the supervisor
            proc.wait()


def test_sigterm_exits_zero(server: tuple[str, subprocess.Popen[bytes]]) -> None:
    base, proc = server
    for _ in range(5):
        assert httpx.get(f"{base}/health/ready", timeout=5).status_code == 200
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0


def test_metrics_aggregate_every_worker(server: tuple[str, subprocess.Popen[bytes]]) -> None:
    base, proc = server
    for _ in range(20):
        httpx.get(f"{base}/docs", timeout=5)
    text = httpx.get(f"{base}/metrics", timeout=5).text
    line = next(
        ln
        for ln in text.splitlines()
        if ln.startswith("taskhub_http_requests_total{") and 'route="/docs"' in ln
    )
    assert float(line.rsplit(" ", 1)[1]) == 20.0
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0


def test_sigterm_lets_an_in_flight_request_finish(server_env: dict[str, str]) -> None:
    """A request whose body is still arriving when SIGTERM lands is answered, then exit 0."""
    env = {**server_env, "WORKERS": "1"}
    proc = subprocess.Popen(
        [TASKHUB, "serve"], env=env, cwd=ROOT, stderr=subprocess.PIPE, start_new_session=True
    )
    base = f"http://127.0.0.1:{env['PORT']}"
    try:
        wait_healthy(base, proc)
        body = b'{"email": "drain@example.com", "password": "long enough pw"}'
        with socket.create_connection(("127.0.0.1", int(env["PORT"])), timeout=30) as sock:
            head = (
                f"POST /v1/users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            ).encode()
            sock.sendall(head + body[:10])
            time.sleep(0.5)  # the handler is now waiting for the rest of the body
            proc.send_signal(signal.SIGTERM)
            time.sleep(0.5)
            sock.sendall(body[10:])
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 201"), answer[:200]
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)  # the workers too, not only the supervisor
            proc.wait()


@pytest.mark.parametrize("workers", [1, 2], ids=["1-worker", "2-workers"])
def test_sigterm_flips_readiness_keeps_serving_through_the_drain_then_stops(
    server_env: dict[str, str], workers: int
) -> None:
    """Every worker answers readiness 503 `draining` from SIGTERM on while still serving; after
    the drain the port closes and the process exits 0."""
    env = {**server_env, "WORKERS": str(workers), "SHUTDOWN_DRAIN_SECONDS": "6"}
    proc = subprocess.Popen(
        [TASKHUB, "serve"], env=env, cwd=ROOT, stderr=subprocess.PIPE, start_new_session=True
    )
    base = f"http://127.0.0.1:{env['PORT']}"
    try:
        wait_healthy(base, proc)
        assert httpx.get(f"{base}/health/ready", timeout=5).status_code == 200
        proc.send_signal(signal.SIGTERM)
        first = _poll_until(base, lambda r: r.status_code == 503)
        assert first.json()["status"] == "draining"
        # Fresh connections spread over the workers: none of them still says ready, and the
        # rest of the API still answers.
        for _ in range(8):
            with httpx.Client(timeout=5) as client:
                ready = client.get(f"{base}/health/ready")
                assert (ready.status_code, ready.json()["status"]) == (503, "draining")
                assert client.get(f"{base}/health").status_code == 200
                assert client.post(f"{base}/v1/users", json={}).status_code == 422
        assert proc.wait(timeout=60) == 0
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{base}/health", timeout=2)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)  # the workers too, not only the supervisor
            proc.wait()


def _poll_until(base: str, done: Callable[[httpx.Response], bool]) -> httpx.Response:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        response = httpx.get(f"{base}/health/ready", timeout=5)
        if done(response):
            return response
        time.sleep(0.05)
    raise AssertionError("readiness never changed")
