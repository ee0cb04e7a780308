"""A real PgBouncer in transaction pooling mode in front of the test PostgreSQL.

Started on a free port with its configuration in a temporary directory (`auth_type = any`: the
server's own user and password are in the database line). Debian's `pgbouncer` package ships
the binary; without it the tests that need it skip loudly, or fail under CI=true.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from alembic.config import Config
from sqlalchemy.engine import make_url

from tests.integration.backends import unavailable

ROOT = Path(__file__).resolve().parents[2]


def alembic_config(url: str) -> Config:
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pgbouncer_binary() -> str | None:
    return shutil.which("pgbouncer") or next(
        (p for p in ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer") if Path(p).is_file()), None
    )


@dataclass(frozen=True)
class PgBouncer:
    host: str
    port: int
    pool_size: int

    def url_for(self, direct_url: str) -> str:
        """The same database, user and password, reached through this PgBouncer."""
        url = make_url(direct_url).set(host=self.host, port=self.port)
        return url.render_as_string(hide_password=False)


def _config(server_url: str, port: int, pool_size: int, workdir: Path) -> str:
    server = make_url(server_url)
    target = f"host={server.host or '127.0.0.1'} port={server.port or 5432}"
    if server.username:
        target += f" user={server.username}"
    if server.password:
        target += f" password={server.password}"
    return f"""[databases]
* = {target}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = any
pool_mode = transaction
default_pool_size = {pool_size}
max_client_conn = 1000
server_reset_query =
logfile = {workdir / "pgbouncer.log"}
pidfile = {workdir / "pgbouncer.pid"}
"""


@contextlib.contextmanager
def run_pgbouncer(server_url: str, pool_size: int = 4) -> Iterator[PgBouncer]:
    """A PgBouncer (transaction mode, `pool_size` server connections per database and user)
    in front of the server of `server_url`; stopped afterwards."""
    binary = pgbouncer_binary()
    if binary is None:
        unavailable("pgbouncer is not installed (Debian: apt-get install pgbouncer)")
        raise AssertionError("unreachable")
    workdir = Path(tempfile.mkdtemp(prefix="taskhub-pgbouncer-"))
    port = free_port()
    ini = workdir / "pgbouncer.ini"
    ini.write_text(_config(server_url, port, pool_size, workdir))
    command = [binary, str(ini)]
    if os.geteuid() == 0:
        # PgBouncer refuses to run as root: it switches to an unprivileged user instead.
        user = "postgres" if _user_exists("postgres") else "nobody"
        # It writes its log and pid file there as that user.
        os.chmod(workdir, 0o777)  # noqa: S103
        command[1:1] = ["-u", user]
    with (workdir / "stderr.log").open("wb") as sink:
        proc = subprocess.Popen(command, stdout=sink, stderr=sink)
    try:
        _wait_listening(port, proc, workdir)
        yield PgBouncer("127.0.0.1", port, pool_size)
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(workdir, ignore_errors=True)


def _user_exists(name: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def _wait_listening(port: int, proc: subprocess.Popen[bytes], workdir: Path) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            logs = [(workdir / n) for n in ("stderr.log", "pgbouncer.log")]
            text = "".join(p.read_text(errors="replace")[-2000:] for p in logs if p.is_file())
            raise AssertionError(f"pgbouncer exited with {proc.returncode}: {text}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        time.sleep(0.05)
    raise AssertionError("pgbouncer did not listen within 15 s")
