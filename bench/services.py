"""Processes the benchmark starts and always stops: a throwaway PostgreSQL and Redis, and the
app servers (each in its own session, so a Ctrl-C in the terminal reaches only the runner,
which then stops them in order).
"""

from __future__ import annotations

import http.client
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO

PG_BIN = Path(os.environ.get("BENCH_PG_BIN", "/usr/lib/postgresql/15/bin"))
# Throwaway cluster: durability off (the numbers are about the app, not the disk). Stated in
# the report so nobody compares POST figures with a durable database.
PG_SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    "shared_buffers": "256MB",
}


def shielded(stop: Callable[[], None]) -> Callable[[], None]:
    """`stop` with Ctrl-C and SIGTERM held back until it has finished (a second Ctrl-C must not
    leave a server or a database behind)."""

    def run() -> None:
        held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        try:
            stop()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, held)

    return run


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def http_status(port: int, path: str, timeout: float = 1.0) -> int | None:
    """The status of GET http://127.0.0.1:port/path, or None when nothing answers."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path)
        return connection.getresponse().status
    except OSError:
        return None
    finally:
        connection.close()


def _stop_group(process: subprocess.Popen[bytes], grace: float) -> None:
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(grace)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(5)


class Server:
    """An app server (uvicorn with N workers) started in its own session."""

    def __init__(
        self, name: str, argv: Sequence[str], env: Mapping[str, str], cwd: Path, log: Path
    ) -> None:
        self.name = name
        self.log_path = log
        self._log: IO[bytes] = log.open("wb")
        self.started = time.perf_counter()
        self.process = subprocess.Popen(
            list(argv),
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_healthy(self, port: int, timeout: float = 60.0) -> float:
        """Seconds from process start to the first `GET /health` 200."""
        deadline = self.started + timeout
        while time.perf_counter() < deadline:
            if self.process.poll() is not None:
                code = self.process.returncode
                raise RuntimeError(f"{self.name} exited with {code}; {self.tail()}")
            if http_status(port, "/health", timeout=0.5) == 200:
                return time.perf_counter() - self.started
            time.sleep(0.01)
        raise RuntimeError(f"{self.name} not healthy after {timeout:.0f} s; {self.tail()}")

    def workers(self) -> list[int]:
        """Pids of the uvicorn worker processes (multiprocessing children), or the server's own
        pid when it runs a single process."""
        found = [
            pid
            for pid in descendants(self.process.pid)
            if "spawn_main" in cmdline(pid) and "resource_tracker" not in cmdline(pid)
        ]
        return found or [self.process.pid]

    def tail(self, lines: int = 30) -> str:
        self._log.flush()
        text = self.log_path.read_text(errors="replace").splitlines()
        return f"last lines of {self.log_path}:\n" + "\n".join(text[-lines:])

    def stop(self) -> None:
        _stop_group(self.process, grace=15)
        self._log.close()


def _cpu_times() -> tuple[int, int]:
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields), idle


def background_cpu_busy(seconds: float = 1.0) -> float:
    """The share (0..1) of all CPUs busy over `seconds` while we wait: load from elsewhere."""
    total_before, idle_before = _cpu_times()
    time.sleep(seconds)
    total_after, idle_after = _cpu_times()
    total = total_after - total_before
    return 0.0 if total <= 0 else 1 - (idle_after - idle_before) / total


def descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found: list[int] = []
    todo = [root]
    while todo:
        pid = todo.pop()
        for child in children.get(pid, []):
            found.append(child)
            todo.append(child)
    return found


_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_ticks(pids: Sequence[int]) -> dict[int, int]:
    """User + system CPU ticks used so far by each live pid of `pids`."""
    ticks: dict[int, int] = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks[pid] = int(fields[11]) + int(fields[12])
    return ticks


def cpu_seconds_between(before: dict[int, int], after: dict[int, int]) -> float:
    """CPU seconds used between two `cpu_ticks` samples (a pid new in `after` counts fully)."""
    return sum(t - before.get(pid, 0) for pid, t in after.items()) / _TICKS


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def peak_rss_mb(pid: int) -> float | None:
    """VmHWM (peak resident set size) of `pid` in MiB, None once the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


class ThrowawayPostgres:
    """A PostgreSQL cluster in a temporary directory on a free port, run as the `postgres`
    user when we are root (initdb refuses root). Durability is off: see PG_SETTINGS."""

    def __init__(self, settings: Mapping[str, str] = PG_SETTINGS) -> None:
        self.settings = dict(settings)
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="taskhub-bench-pg-"))
        self._as: list[str] = []
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(self.dir, user.pw_uid, user.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]
        self.data = self.dir / "data"
        self.started = False

    def _run(self, *argv: str) -> None:
        subprocess.run(
            [*self._as, *argv],
            check=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            start_new_session=True,
        )

    def start(self) -> None:
        self._run(
            str(PG_BIN / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-sync",
        )
        options = [f"-p {self.port}", "-h 127.0.0.1", f"-k {self.dir}"]
        options += [f"-c {name}={value}" for name, value in self.settings.items()]
        self.started = True
        self._run(
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.dir / "postgres.log"),
            "-o",
            " ".join(options),
            "-w",
            "-t",
            "60",
            "start",
        )
        self._run(str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "taskhub")

    def pids(self) -> list[int]:
        """The postmaster and its children (the backends serving the pools)."""
        try:
            postmaster = int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return []
        return [postmaster, *descendants(postmaster)]

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/taskhub"

    def stop(self) -> None:
        if self.started:
            pg_ctl = str(PG_BIN / "pg_ctl")
            subprocess.run(
                [*self._as, pg_ctl, "-D", str(self.data), "-m", "immediate", "stop"],
                check=False,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        shutil.rmtree(self.dir, ignore_errors=True)


class ThrowawayRedis:
    """`redis-server` on a free port with persistence off."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="taskhub-bench-redis-"))
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                shutil.which("redis-server") or "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.dir),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not answer PING within 10 s")

    def pids(self) -> list[int]:
        return [] if self.process is None else [self.process.pid]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        if self.process is not None:
            _stop_group(self.process, grace=5)
        shutil.rmtree(self.dir, ignore_errors=True)
