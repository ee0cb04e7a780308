"""A real HAProxy (Debian's `haproxy`) in front of `taskhub serve` replicas, on free ports: HTTP
round robin, health checks on `/health/ready`, and a stats page whose CSV says which server is
UP. Without the binary the tests that need it skip loudly, or fail under CI=true."""

from __future__ import annotations

import contextlib
import csv
import io
import shutil
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.integration.backends import unavailable
from tests.integration.pgbouncer import free_port


def haproxy_binary() -> str | None:
    return shutil.which("haproxy") or next(
        (p for p in ("/usr/sbin/haproxy", "/usr/bin/haproxy") if Path(p).is_file()), None
    )


@dataclass(frozen=True)
class HAProxy:
    base: str  # the frontend, e.g. http://127.0.0.1:PORT
    stats: str  # the stats page's CSV
    log: Path  # one line per request, and each server state change

    def states(self) -> dict[str, str]:
        """Backend server name -> status ("UP", "DOWN", "UP 1/2", ...)."""
        text = httpx.get(self.stats, timeout=5).text.lstrip("# ")
        return {
            row["svname"]: row["status"]
            for row in csv.DictReader(io.StringIO(text))
            if row["pxname"] == "replicas" and row["svname"] not in {"FRONTEND", "BACKEND"}
        }

    def wait_for(self, server: str, status: str, seconds: float = 60) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.states().get(server) == status:
                return
            time.sleep(0.1)
        raise AssertionError(f"{server} not {status} within {seconds} s: {self.states()}")


def _config(ports: Sequence[int], front: int, stats: int) -> str:
    servers = "\n".join(f"    server r{i} 127.0.0.1:{port} check" for i, port in enumerate(ports))
    return f"""global
    maxconn 2000
    log stdout format raw local0

defaults
    mode http
    log global
    option httplog
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    timeout check 3s
    # A connection that cannot be made is tried again, on another server.
    retries 3
    option redispatch
    retry-on conn-failure

frontend api
    bind 127.0.0.1:{front}
    option forwardfor
    default_backend replicas

backend replicas
    balance roundrobin
    # One request per server connection: no idle connection of HAProxy's can race the
    # server's own keep-alive timeout.
    option http-server-close
    option httpchk GET /health/ready
    http-check expect status 200
    default-server inter 300ms fastinter 200ms downinter 300ms fall 2 rise 2
{servers}

frontend stats
    bind 127.0.0.1:{stats}
    stats enable
    stats uri /stats
    stats refresh 1s
"""


@contextlib.contextmanager
def run_haproxy(ports: Sequence[int], workdir: Path) -> Iterator[HAProxy]:
    """HAProxy in front of 127.0.0.1:`ports`; its configuration and log (one line per request)
    in `workdir`."""
    binary = haproxy_binary()
    if binary is None:
        unavailable("haproxy is not installed (Debian: apt-get install haproxy)")
        raise AssertionError("unreachable")
    workdir.mkdir(parents=True, exist_ok=True)
    front, stats = free_port(), free_port()
    cfg = workdir / "haproxy.cfg"
    cfg.write_text(_config(ports, front, stats))
    check = subprocess.run([binary, "-c", "-f", str(cfg)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    with (workdir / "haproxy.log").open("wb") as sink:
        proc = subprocess.Popen([binary, "-db", "-f", str(cfg)], stdout=sink, stderr=sink)
    proxy = HAProxy(
        f"http://127.0.0.1:{front}",
        f"http://127.0.0.1:{stats}/stats;csv",
        workdir / "haproxy.log",
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            if proc.poll() is not None:
                log = (workdir / "haproxy.log").read_text(errors="replace")
                raise AssertionError(f"haproxy exited with {proc.returncode}: {log[-2000:]}")
            with contextlib.suppress(httpx.HTTPError):
                proxy.states()
                break
            if time.monotonic() > deadline:
                raise AssertionError("haproxy did not answer within 15 s")
            time.sleep(0.05)
        yield proxy
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
