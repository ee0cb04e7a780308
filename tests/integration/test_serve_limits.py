"""`taskhub serve` bounds what a connection may hold before routing: head size, the time to send
a head or a body, idle connections, and the number of connections per worker.

Each test talks raw HTTP/1.1 over a socket to a real server process. The configured timeouts are
small (1 s); the waits are generous (the socket gives up after WAIT seconds), so a slow machine
makes a test slower, never wrong.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.test_serve import ROOT, TASKHUB, free_port, wait_healthy

WAIT = 30.0


def start_server(tmp: Path, **settings: str) -> tuple[subprocess.Popen[bytes], int]:
    import os

    port = free_port()
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_", "HTTP_"))
    }
    env.update(
        DATABASE_URL=f"sqlite+aiosqlite:///{tmp}/limits.db",
        HOST="127.0.0.1",
        PORT=str(port),
        LOG_FORMAT="json",
        PROMETHEUS_MULTIPROC_DIR=str(tmp / "metrics"),
        **settings,
    )
    proc = subprocess.Popen(
        [TASKHUB, "serve"],
        env=env,
        cwd=ROOT,
        stderr=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_healthy(f"http://127.0.0.1:{port}", proc)
    except BaseException:
        stop(proc)
        raise
    return proc, port


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)  # the workers too, not only the supervisor
        proc.wait()


@pytest.fixture(scope="module", params=[1, 2], ids=["1-worker", "2-workers"])
def port(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A server with small timeouts (1 s) and the default 64 KiB head cap."""
    proc, port = start_server(
        tmp_path_factory.mktemp("limits"),
        WORKERS=str(request.param),
        HTTP_HEADER_TIMEOUT="1",
        HTTP_BODY_TIMEOUT="1",
        HTTP_KEEP_ALIVE_TIMEOUT="1",
    )
    try:
        yield port
    finally:
        stop(proc)


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
    sock.settimeout(WAIT)
    return sock


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (or resets it).
    Raises TimeoutError if the server keeps the connection open for WAIT seconds."""
    answer = b""
    try:
        while chunk := sock.recv(65536):
            answer += chunk
    except ConnectionResetError:
        pass
    return answer


def read_one_answer(sock: socket.socket) -> bytes:
    """One answer with a Content-Length body, leaving the connection open."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"closed before an answer: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += sock.recv(65536)
    return data


def problem(answer: bytes, status: int) -> dict[str, object]:
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(f"HTTP/1.1 {status} ".encode()), answer[:300]
    lines = head.lower().split(b"\r\n")
    assert b"content-type: application/problem+json" in lines, head
    assert b"x-content-type-options: nosniff" in lines, head
    parsed: dict[str, object] = json.loads(body)
    assert parsed["status"] == status
    return parsed


def get_health(port: int, extra: bytes = b"") -> bytes:
    with connect(port) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n" + extra + b"Connection: close\r\n\r\n")
        return read_until_closed(sock)


def test_a_head_over_64_kib_is_431_and_one_under_it_is_served(port: int) -> None:
    assert get_health(port, b"X-Big: " + b"a" * 60_000 + b"\r\n").startswith(b"HTTP/1.1 200")
    answer = get_health(port, b"X-Big: " + b"a" * 100_000 + b"\r\n")
    problem(answer, 431)
    many = b"".join(b"X-H%d: %s\r\n" % (i, b"b" * 100) for i in range(1000))  # ~100 KiB
    problem(get_health(port, many), 431)
    long_url = b"GET /health?" + b"q" * 100_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    with connect(port) as sock:
        sock.sendall(long_url)
        problem(read_until_closed(sock), 431)


def test_a_32_mib_head_is_never_served(port: int) -> None:
    with connect(port) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ")
        sent = 0
        try:
            while sent < 32 * 1024 * 1024:
                sock.sendall(b"a" * 65536)
                sent += 65536
            sock.sendall(b"\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server stopped reading: what this test wants
        answer = read_until_closed(sock)
    assert sent < 32 * 1024 * 1024, "the server read a 32 MiB head"
    assert not answer.startswith(b"HTTP/1.1 200")
    if answer:
        problem(answer, 431)
    assert get_health(port).startswith(b"HTTP/1.1 200")


def test_a_slowly_sent_head_is_cut_off(port: int) -> None:
    """Slow loris: a header line every 0.2 s never completes the head; the deadline is for the
    whole head, so trickling does not extend it."""
    with connect(port) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        sock.settimeout(0.2)
        deadline = time.monotonic() + WAIT
        answer = b""
        while time.monotonic() < deadline:
            try:
                sock.sendall(b"X-Slow: 1\r\n")
            except (BrokenPipeError, ConnectionResetError):
                break
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                continue
            except ConnectionResetError:
                break
            if not chunk:
                break
            answer += chunk
        else:
            pytest.fail("the server kept a slow head open")
    if answer:
        problem(answer, 408)


def test_a_connection_that_sends_nothing_is_closed(port: int) -> None:
    with connect(port) as sock:
        assert read_until_closed(sock) == b""


def test_an_idle_kept_alive_connection_is_closed(port: int) -> None:
    with connect(port) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_one_answer(sock).startswith(b"HTTP/1.1 200")
        # HTTP_KEEP_ALIVE_TIMEOUT=1; uvicorn's own default is 5 s.
        sock.settimeout(4)
        assert read_until_closed(sock) == b""


def test_a_stalled_body_is_cut_off_with_408(port: int) -> None:
    body = b'{"email": "stall@example.com", "password": "long enough pw"}'
    with connect(port) as sock:
        sock.sendall(
            b"POST /v1/users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body) + body[:10]
        )
        answer = read_until_closed(sock)
    problem(answer, 408)


def test_bytes_that_are_not_http_get_a_400_problem(port: int) -> None:
    with connect(port) as sock:
        sock.sendall(b"NOT HTTP AT ALL\r\n\r\n")
        problem(read_until_closed(sock), 400)


def test_connections_beyond_the_cap_are_answered_503(tmp_path: Path) -> None:
    proc, port = start_server(tmp_path, HTTP_MAX_CONNECTIONS="8", HTTP_HEADER_TIMEOUT="60")
    held: list[socket.socket] = []
    try:
        for _ in range(8):
            sock = connect(port)
            sock.sendall(b"GET /health HTTP/1.1\r\n")  # an unfinished head holds the slot
            held.append(sock)
        for _ in range(3):
            answer = get_health(port)
            assert not answer.startswith(b"HTTP/1.1 200"), answer[:200]
            if answer:  # else refused outright (reset): also fine
                assert problem(answer, 503)["type"] == "https://taskhub.dev/problems/unavailable"
                assert b"\r\nretry-after: 1\r\n" in answer.lower()
        for sock in held:
            sock.close()
        held.clear()
        deadline = time.monotonic() + WAIT
        while not get_health(port).startswith(b"HTTP/1.1 200"):
            assert time.monotonic() < deadline, "the cap did not free up"
            time.sleep(0.1)
    finally:
        for sock in held:
            sock.close()
        stop(proc)


def test_a_request_cut_off_at_the_end_of_the_shutdown_grace_period_gets_a_retryable_503(
    tmp_path: Path,
) -> None:
    """Its body never ends; SIGTERM; once GRACEFUL_SHUTDOWN_TIMEOUT passes, uvicorn cancels the
    request: the client learns it may retry elsewhere, and the process still exits 0."""
    proc, port = start_server(tmp_path, GRACEFUL_SHUTDOWN_TIMEOUT="1", HTTP_BODY_TIMEOUT="600")
    try:
        with connect(port) as sock:
            sock.sendall(
                b"POST /v1/users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: 100\r\n\r\n{"
            )
            sock.sendall(b'"email"')  # the handler now waits for the rest of the body
            time.sleep(0.5)
            proc.send_signal(signal.SIGTERM)
            answer = read_until_closed(sock)
        body = problem(answer, 503)
        assert body["type"] == "https://taskhub.dev/problems/unavailable"
        assert "retry" in str(body["detail"]).lower()
        assert b"\r\nretry-after: " in answer.lower()
        assert proc.wait(timeout=WAIT) == 0
    finally:
        stop(proc)
