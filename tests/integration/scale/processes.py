"""Real `taskhub` processes for the scale tests: databases, CLI calls and `serve` replicas.

Each process gets a clean environment: every Settings variable inherited from the caller is
dropped, and the process runs in a scratch directory so that no `.env` leaks in.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import httpx
import msgspec
from sqlalchemy.engine import make_url

from app.settings import Settings

ROOT = Path(__file__).resolve().parents[3]
TASKHUB = str(Path(sys.executable).parent / "taskhub")
PASSWORD = "correct horse battery staple"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_env(workdir: Path, **settings: str) -> dict[str, str]:
    """os.environ without any Settings variable, plus `settings` and quiet JSON logs."""
    names = {f.name for f in msgspec.structs.fields(Settings)}
    env = {k: v for k, v in os.environ.items() if k not in names}
    env.update(
        ALEMBIC_CONFIG=str(ROOT / "alembic.ini"),
        LOG_FORMAT="json",
        LOG_LEVEL="WARNING",
        HOST="127.0.0.1",
        SHUTDOWN_DRAIN_SECONDS="0",
        SHUTDOWN_TIMEOUT_SECONDS="5",
        TASKHUB_WORKDIR=str(workdir),  # the processes' cwd (not a setting)
    )
    env.update(settings)
    workdir.mkdir(parents=True, exist_ok=True)
    return env


def asyncpg_dsn(sqlalchemy_url: str) -> str:
    return make_url(sqlalchemy_url).set(drivername="postgresql").render_as_string(False)


async def _admin(url: str, sql: str) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextlib.contextmanager
def fresh_database(server_url: str) -> Iterator[str]:
    """A new, empty database on the server of `server_url`, dropped afterwards (call from sync
    code). Raises asyncpg errors when the account may not create databases."""
    name = f"taskhub_scale_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(server_url, f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(server_url).set(database=name).render_as_string(False)
    finally:
        asyncio.run(_admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def run_all(
    env: Mapping[str, str], commands: Sequence[tuple[Sequence[str], str | None]]
) -> list[str]:
    """Run several `taskhub` commands at once; their stdout, in order. Any failure fails."""
    procs = [
        subprocess.Popen(
            [TASKHUB, *args],
            env=dict(env),
            cwd=env["TASKHUB_WORKDIR"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for args, _ in commands
    ]
    outputs: list[str] = []
    for proc, (args, stdin) in zip(procs, commands, strict=True):
        out, err = proc.communicate(stdin, timeout=120)
        assert proc.returncode == 0, f"taskhub {' '.join(args)} exited {proc.returncode}: {err}"
        outputs.append(out.strip())
    return outputs


@dataclass
class App:
    """One `taskhub serve` process."""

    base: str
    proc: subprocess.Popen[bytes]
    log: Path

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_apps(envs: Sequence[Mapping[str, str]], seconds: float = 90) -> list[App]:
    """Start one `taskhub serve` per env (all at once) and wait until each answers /health."""
    apps: list[App] = []
    try:
        for env in envs:
            workdir = Path(env["TASKHUB_WORKDIR"])
            log = workdir / f"serve-{env['PORT']}.log"
            with log.open("wb") as sink:
                proc = subprocess.Popen(
                    [TASKHUB, "serve"], env=dict(env), cwd=workdir, stdout=sink, stderr=sink
                )
            apps.append(App(f"http://127.0.0.1:{env['PORT']}", proc, log))
        deadline = time.monotonic() + seconds
        for app in apps:
            _wait_healthy(app, deadline)
    except BaseException:
        for app in apps:
            app.stop()
        raise
    return apps


def _wait_healthy(app: App, deadline: float) -> None:
    while time.monotonic() < deadline:
        if app.proc.poll() is not None:
            raise AssertionError(f"{app.base} exited with {app.proc.returncode}:\n{app.log_tail()}")
        try:
            if httpx.get(f"{app.base}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{app.base} did not become healthy:\n{app.log_tail()}")


def create_accounts(
    env: Mapping[str, str], wanted: Mapping[str, Sequence[Sequence[str]]]
) -> dict[str, tuple[str, ...]]:
    """Per e-mail: `taskhub create-user`, then one `taskhub create-api-key` per scope list.
    Returns each user's key secrets (in the order asked). Commands of one kind run in parallel."""
    run_all(
        env, [(["create-user", email, "--password-stdin"], PASSWORD + "\n") for email in wanted]
    )
    commands: list[tuple[Sequence[str], str | None]] = []
    owners: list[str] = []
    for email, key_scopes in wanted.items():
        for i, scopes in enumerate(key_scopes):
            args = ["create-api-key", email, "--name", f"key-{i}"]
            for scope in scopes:
                args += ["--scope", scope]
            commands.append((args, None))
            owners.append(email)
    secrets = run_all(env, commands)
    return {
        email: tuple(s for s, owner in zip(secrets, owners, strict=True) if owner == email)
        for email in wanted
    }
