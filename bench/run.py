"""The yardstick of issue 7: Taskhub against a bare Litestar + asyncpg ceiling on the same data.

Sets up PostgreSQL and Redis (throwaway ones unless BENCH_DATABASE_URL / BENCH_REDIS_URL are
given), migrates, creates a user and an API key through the `taskhub` CLI, seeds BENCH_TASKS
tasks with COPY, then for BENCH_ROUNDS rounds starts the ceiling and then Taskhub (one at a
time, BENCH_WORKERS uvicorn workers each, the same database pool bounds) and drives GET by id,
the default list page and POST with wrk; on Taskhub alone also a batch of 100 creates against
single POSTs, and over MCP find-tasks against the list and add-tasks of 50 against a batch of
50 (BENCH_MCP=0 leaves those out). Prints the median per endpoint and the ratio
Taskhub/ceiling, the Taskhub-only rows, startup time and peak RSS per worker; writes
bench/results/latest.{json,md}.

  .venv/bin/python -m bench.run            # the full run (~3.5 min with the defaults)
  .venv/bin/python -m bench.run --quick    # smoke run: 1 round of 3 s
  .venv/bin/python -m bench.run --serve taskhub   # set up, start one app, wait (for profiling)

Exit status: 0 measured, 1 a run had errors (non-2xx or socket errors: the figures are void),
2 set-up failed, 3 with --strict when a floor or another target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import http.client
import json
import os
import random
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from bench.receiver import ThreadedReceiver
from bench.seed import (
    create_shared_project,
    delete_population,
    reset_tasks,
    seed_population,
    seed_tasks,
)
from bench.services import (
    PG_SETTINGS,
    Server,
    ThrowawayPostgres,
    ThrowawayRedis,
    background_cpu_busy,
    cpu_seconds_between,
    cpu_ticks,
    free_port,
    peak_rss_mb,
    shielded,
)
from bench.webhook_load import SERVER_ENV, WebhookLoad

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
LUA = ROOT / "bench" / "wrk" / "tasks.lua"
POST_FIELDS = {
    "title": "  Write the benchmark report  ",
    "description": "Compare Taskhub with the ceiling and note where the time goes.",
    "priority": 2,
    "labels": ["work", "perf", "work"],
    "due_at": "2026-12-01T09:00:00+00:00",
}
SHARED_MEMBERS = 4  # besides the bench user, who owns the project


def post_body(project_id: str) -> str:
    return json.dumps({**POST_FIELDS, "project_id": project_id}, separators=(",", ":"))


# Taskhub only: a batch of BATCH_SIZE creates (each POST_FIELDS) against as many single POSTs,
# compared in tasks created per second (the single POST figures are the `post` endpoint's).
BATCH_SIZE = 100
BATCH_GOAL = 10.0
BATCH_LABEL = f"POST /v1/tasks/batch ({BATCH_SIZE} creates) vs {BATCH_SIZE} POST /v1/tasks"


def batch_body(project_id: str, size: int = BATCH_SIZE, atomic: bool = True) -> str:
    create = {"op": "create", "data": {**POST_FIELDS, "project_id": project_id}}
    body: dict[str, Any] = {"operations": [create] * size}
    if not atomic:
        body["atomic"] = False
    return json.dumps(body, separators=(",", ":"))


# Taskhub only, over MCP (POST /mcp, stateless, a JSON answer per tools/call): find-tasks with
# the list endpoint's page against GET /v1/tasks, and add-tasks of MCP_ADD_SIZE (its most)
# against a batch of as many creates with `atomic: false`, which like add-tasks commits each
# create on its own. Both compared per Taskhub round, the median of the rounds' ratios.
MCP_PROTOCOL = "2025-11-25"  # the handshake era: a call needs no envelope in its _meta
MCP_PAGE = 50  # the list endpoint's page (tasks.lua asks ?limit=50)
MCP_FIND_GOAL = 0.5
MCP_FIND_LABEL = f"find-tasks (MCP, limit {MCP_PAGE}) vs GET /v1/tasks?limit={MCP_PAGE}"
MCP_ADD_SIZE = 50
MCP_ADD_LABEL = (
    f"add-tasks (MCP, {MCP_ADD_SIZE} tasks) vs POST /v1/tasks/batch "
    f"({MCP_ADD_SIZE} creates, atomic false)"
)


def mcp_call(tool: str, arguments: dict[str, Any]) -> str:
    """A JSON-RPC tools/call, as a client sends it (id 1: tasks.lua checks the answer's)."""
    params = {"name": tool, "arguments": arguments}
    message = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}
    return json.dumps(message, separators=(",", ":"))


def mcp_find_body() -> str:
    return mcp_call("find-tasks", {"limit": MCP_PAGE})


def mcp_add_body(project_id: str) -> str:
    task = {**POST_FIELDS, "project_id": project_id}
    return mcp_call("add-tasks", {"tasks": [task] * MCP_ADD_SIZE})


@dataclass(frozen=True)
class Endpoint:
    mode: str  # the key of its results and, unless wrk_mode says otherwise, the Lua BENCH_MODE
    label: str
    floor: float
    goal: float
    wrk_mode: str = ""


ENDPOINTS = (
    Endpoint("get", "GET /v1/tasks/{id}", 0.30, 0.55),
    Endpoint("list", "GET /v1/tasks?limit=50", 0.35, 0.50),
    Endpoint("post", "POST /v1/tasks", 0.30, 0.55),
)
# Measured on Taskhub only, after ENDPOINTS; its row is `batch_row`'s, not a ceiling ratio.
BATCH_ENDPOINT = Endpoint("batch", f"POST /v1/tasks/batch ({BATCH_SIZE})", 0.0, BATCH_GOAL)
# Measured on Taskhub only, after BATCH_ENDPOINT, unless BENCH_MCP=0; rows `mcp_find_row` and
# `mcp_add_row`.
MCP_ENDPOINTS = (
    Endpoint("batch50", f"POST /v1/tasks/batch ({MCP_ADD_SIZE}, non-atomic)", 0.0, 0.0, "batch"),
    Endpoint("mcp-find", f"MCP find-tasks ({MCP_PAGE})", 0.0, MCP_FIND_GOAL, "mcp"),
    Endpoint("mcp-add", f"MCP add-tasks ({MCP_ADD_SIZE})", 0.0, 0.0, "mcp"),
)
CREATING = {"post", "batch", "batch50", "mcp-add"}  # modes whose tasks are deleted after a run
# Modes driven with BENCH_MCP_ADD_CONNECTIONS: a request creates MCP_ADD_SIZE tasks one after
# another, so 64 of them in flight queue for seconds each.
FEW_CONNECTIONS = {"batch50", "mcp-add"}
# A worker builds its MCP server on its first MCP request (0.5-2 s): the warm-up before
# find-tasks lasts at least this long, so that no worker builds while measured.
MCP_WARMUP_MIN = 3
APPS = ("ceiling", "taskhub")
P99_FACTOR_MAX = 2.0
RSS_MAX_MB = 120.0
NOISY_BACKGROUND = 0.10  # CPU share used by others before a run that makes its figures suspect
STARTUP_MAX_S = 2.0


@dataclass
class Config:
    duration: int
    warmup: int
    connections: int
    threads: int
    rounds: int
    tasks: int
    workers: int
    pool_size: int
    pool_overflow: int
    sample_ids: int
    rate_limit: str
    mcp: bool = True
    mcp_add_connections: int = 8
    webhooks: int = 0
    webhook_worker: str = "serve"


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def load_config(quick: bool) -> Config:
    return Config(
        duration=_env_int("BENCH_DURATION", 3 if quick else 10),
        warmup=_env_int("BENCH_WARMUP", 1 if quick else 3),
        connections=_env_int("BENCH_CONNECTIONS", 64),
        threads=_env_int("BENCH_THREADS", 2),
        rounds=_env_int("BENCH_ROUNDS", 1 if quick else 3),
        tasks=_env_int("BENCH_TASKS", 10_000),
        workers=_env_int("BENCH_WORKERS", 2),
        pool_size=_env_int("BENCH_POOL_SIZE", 10),
        pool_overflow=_env_int("BENCH_POOL_OVERFLOW", 0),
        sample_ids=_env_int("BENCH_SAMPLE_IDS", 2000),
        rate_limit=os.environ.get("BENCH_RATE_LIMIT", "10000000/minute"),
        mcp=os.environ.get("BENCH_MCP", "1") != "0",
        mcp_add_connections=_env_int("BENCH_MCP_ADD_CONNECTIONS", 8),
        webhooks=_env_int("BENCH_WEBHOOKS", 0),
        webhook_worker=os.environ.get("BENCH_WEBHOOK_WORKER", "serve"),
    )


class Interrupted(Exception):
    """SIGTERM: leave through the same clean-up as Ctrl-C."""


def _on_sigterm(_signum: int, _frame: FrameType | None) -> None:
    raise Interrupted


def say(message: str) -> None:
    print(f"[bench] {message}", flush=True)


# --- wrk --------------------------------------------------------------------------------------


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    apt = ["apt-get", "install", "-y", "--no-install-recommends", "wrk"]
    prefix: list[str] = [] if os.geteuid() == 0 else ["sudo", "-n"]
    say(f"wrk not found: installing the Debian package: {' '.join(prefix + apt)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if subprocess.run(prefix + apt, env=env, check=False).returncode != 0:
        say("install failed; refreshing the package lists (apt-get update) and retrying")
        subprocess.run([*prefix, "apt-get", "update"], env=env, check=True)
        subprocess.run(prefix + apt, env=env, check=True)
    found = shutil.which("wrk")
    if not found:
        raise RuntimeError("wrk is still missing after apt-get install")
    return found


@dataclass
class Measurement:
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    errors: dict[str, int]
    # CPU seconds the app's workers (and the throwaway PostgreSQL and Redis, when ours) used
    # during the measured run: requests per CPU second hardly depends on what else the machine
    # runs, unlike req/s.
    app_cpu_s: float = 0.0
    backend_cpu_s: float = 0.0

    @property
    def requests_per_cpu_s(self) -> float:
        cpu = self.app_cpu_s + self.backend_cpu_s
        return round(self.requests / cpu, 1) if cpu else 0.0

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


def run_wrk(
    wrk: str,
    cfg: Config,
    port: int,
    mode: str,
    prefix: str,
    token: str,
    ids: Path,
    seconds: int,
    body: str,
    connections: int = 0,
) -> Measurement:
    env = {
        **os.environ,
        "BENCH_MODE": mode,
        "BENCH_PREFIX": prefix,
        "BENCH_TOKEN": token,
        "BENCH_IDS_FILE": str(ids),
        "BENCH_BODY": body,
        "BENCH_MCP_PROTOCOL": MCP_PROTOCOL,
    }
    connections = connections or cfg.connections
    argv = [wrk, f"-t{min(cfg.threads, connections)}", f"-c{connections}", f"-d{seconds}s"]
    argv += ["--timeout", "5s"]
    argv += ["-s", str(LUA), f"http://127.0.0.1:{port}"]
    done = subprocess.run(
        argv, env=env, capture_output=True, text=True, timeout=seconds + 60, check=False
    )
    line = next((x for x in done.stdout.splitlines() if x.startswith("BENCH_RESULT ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout}\n{done.stderr}")
    raw = json.loads(line.removeprefix("BENCH_RESULT "))
    elapsed = raw["duration_us"] / 1e6
    errors = {
        kind: raw[f"errors_{kind}"]
        for kind in ("status", "connect", "read", "write", "timeout", "tool")
        if raw[f"errors_{kind}"]
    }
    return Measurement(
        requests=raw["requests"],
        seconds=round(elapsed, 3),
        rps=round(raw["requests"] / elapsed, 1),
        p50_ms=raw["p50_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        errors=errors,
    )


def source_fingerprint() -> str:
    """A hash of Taskhub's code (src/, migrations/): others may edit it during a run."""
    digest = hashlib.sha256()
    for path in sorted([*ROOT.glob("src/**/*.py"), *ROOT.glob("migrations/**/*.py")]):
        digest.update(str(path.relative_to(ROOT)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def git_state() -> str:
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
        return done.stdout.strip()

    dirty = git("status", "--porcelain", "--", "src", "migrations")
    return f"{git('rev-parse', '--short', 'HEAD')}{' + uncommitted changes' if dirty else ''}"


# --- set-up -----------------------------------------------------------------------------------


def plain_dsn(url: str) -> str:
    """An asyncpg DSN from a SQLAlchemy or plain PostgreSQL URL."""
    for scheme in ("postgresql+asyncpg://", "postgres://"):
        if url.startswith(scheme):
            return "postgresql://" + url.removeprefix(scheme)
    return url


def base_env(home: Path) -> dict[str, str]:
    """A clean environment for the servers: nothing inherited that Taskhub would read."""
    keep = ("PATH", "LANG", "LC_ALL", "TZ")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env["HOME"] = str(home)
    return env


def taskhub_env(cfg: Config, home: Path, dsn: str, redis_url: str, port: int) -> dict[str, str]:
    return {
        **base_env(home),
        "ENVIRONMENT": "production",
        "DATABASE_URL": "postgresql+asyncpg://" + dsn.removeprefix("postgresql://"),
        "REDIS_URL": redis_url,
        "REDIS_KEY_PREFIX": f"taskhub-bench-{os.getpid()}:",
        "SESSION_HASH_SECRET": secrets.token_urlsafe(48),
        "SERVICE_AUTH_TOKEN": secrets.token_urlsafe(48),
        "ENCRYPTION_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode(),
        "RATE_LIMIT_DEFAULT": cfg.rate_limit,
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "INFO",
        "WORKERS": str(cfg.workers),
        "SQLALCHEMY_POOL_SIZE": str(cfg.pool_size),
        "SQLALCHEMY_POOL_OVERFLOW": str(cfg.pool_overflow),
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "SHUTDOWN_DRAIN_SECONDS": "0",
        "SHUTDOWN_TIMEOUT_SECONDS": "5",
        "PROMETHEUS_MULTIPROC_DIR": str(home / "metrics"),
        "ALEMBIC_CONFIG": str(ROOT / "alembic.ini"),
        # The batch row creates far more than the default cap allows in one run.
        "MAX_TASKS_PER_USER": "2000000000",
    }


def ceiling_env(
    cfg: Config, home: Path, dsn: str, owner_id: str, project_id: str
) -> dict[str, str]:
    return {
        **base_env(home),
        "BENCH_CEILING_DSN": dsn,
        "BENCH_OWNER_ID": owner_id,
        "BENCH_PROJECT_ID": project_id,
        "BENCH_POOL_MIN": str(cfg.pool_size),
        "BENCH_POOL_MAX": str(cfg.pool_size + cfg.pool_overflow),
        "BENCH_CEILING_RESET": ceiling_reset(),
        "PYTHONPATH": str(ROOT),
    }


def ceiling_reset() -> str:
    value = os.environ.get("BENCH_CEILING_RESET", "none")
    if value not in {"pool", "none"}:
        raise SystemExit(f"BENCH_CEILING_RESET must be pool or none, not {value!r}")
    return value


def taskhub_cli(env: dict[str, str], home: Path, *args: str, stdin: str = "") -> str:
    command = [str(Path(sys.executable).parent / "taskhub"), *args]
    # Metrics files are for the server's workers only.
    env = {k: v for k, v in env.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    done = subprocess.run(
        command, env=env, cwd=home, input=stdin, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"`taskhub {' '.join(args)}` failed: {done.stderr.strip()}")
    return done.stdout.strip()


@dataclass
class Fixture:
    dsn: str
    redis_url: str
    home: Path
    taskhub_env: dict[str, str]
    owner_id: str
    token: str
    ids_file: Path
    sample_id: str
    cutoff: datetime
    project_id: str
    body: str
    notes: list[str] = field(default_factory=list)
    batch_body: str = ""
    bodies: dict[str, str] = field(default_factory=dict)  # by endpoint mode; else `body`
    backend_pids: Callable[[], list[int]] = list
    code: str = ""
    webhooks: WebhookLoad | None = None


def prepare(cfg: Config, stack: ExitStack) -> Fixture:
    home = Path(tempfile.mkdtemp(prefix="taskhub-bench-"))
    stack.callback(shutil.rmtree, home, True)
    notes: list[str] = []
    backends: list[Callable[[], list[int]]] = []
    given_db = os.environ.get("BENCH_DATABASE_URL")
    if given_db:
        dsn = plain_dsn(given_db)
        notes.append("database: given by BENCH_DATABASE_URL")
    else:
        pg = ThrowawayPostgres()
        stack.callback(shielded(pg.stop))
        say(f"starting a throwaway PostgreSQL on port {pg.port} in {pg.dir}")
        pg.start()
        backends.append(pg.pids)
        dsn = pg.dsn
        settings = ", ".join(f"{k}={v}" for k, v in PG_SETTINGS.items())
        notes.append(f"database: throwaway PostgreSQL 15 with durability off ({settings})")
    given_redis = os.environ.get("BENCH_REDIS_URL")
    if given_redis:
        redis_url = given_redis
        notes.append("redis: given by BENCH_REDIS_URL")
    else:
        redis = ThrowawayRedis()
        stack.callback(shielded(redis.stop))
        say(f"starting a throwaway redis-server on port {redis.port} (no persistence)")
        redis.start()
        backends.append(redis.pids)
        redis_url = redis.url
        notes.append("redis: throwaway redis-server, --save '' --appendonly no")

    env = taskhub_env(cfg, home, dsn, redis_url, port=8000)
    started = time.perf_counter()
    taskhub_cli(env, home, "migrate")
    say(f"migrated in {time.perf_counter() - started:.1f} s")
    email = f"bench-{uuid.uuid4().hex[:12]}@example.com"
    owner_id = taskhub_cli(
        env, home, "create-user", email, "--password-stdin", stdin=secrets.token_urlsafe(18) + "\n"
    )
    members: list[str] = []
    if given_db:  # the users, their inboxes, the shared project and every task in them
        stack.callback(lambda: asyncio.run(delete_population(dsn, [owner_id, *members])))
    for n in range(SHARED_MEMBERS):
        member = taskhub_cli(
            env, home, "create-user", f"member{n}-{email}", "--password-stdin",
            stdin=secrets.token_urlsafe(18) + "\n",
        )  # fmt: skip
        members.append(member)
    project_id = asyncio.run(create_shared_project(dsn, owner_id, members))
    restricted = os.environ.get("BENCH_RESTRICTED_KEY", "0") == "1"
    scope = ["--project", project_id] if restricted else []
    token = taskhub_cli(
        env, home, "create-api-key", email, "--name", "bench", "--scope", "tasks:read",
        "--scope", "tasks:write", *scope,
    )  # fmt: skip
    notes.append(
        f"tasks in a project shared with {SHARED_MEMBERS + 1} members; API key "
        + ("restricted to that project (BENCH_RESTRICTED_KEY=1)" if restricted else "unrestricted")
    )
    started = time.perf_counter()
    ids, cutoff = asyncio.run(seed_tasks(dsn, owner_id, cfg.tasks, project_id))
    say(f"seeded {len(ids)} tasks for user {owner_id} in {time.perf_counter() - started:.1f} s")
    sample = random.Random(11).sample(ids, min(cfg.sample_ids, len(ids)))
    ids_file = home / "ids.txt"
    ids_file.write_text("\n".join(sample) + "\n")
    fixture = Fixture(
        dsn, redis_url, home, env, owner_id, token, ids_file, sample[0], cutoff,
        project_id, post_body(project_id), notes,
    )  # fmt: skip
    fixture.batch_body = batch_body(project_id)
    fixture.bodies = {
        "batch": fixture.batch_body,
        "batch50": batch_body(project_id, MCP_ADD_SIZE, atomic=False),
        "mcp-find": mcp_find_body(),
        "mcp-add": mcp_add_body(project_id),
    }
    if cfg.webhooks:  # subscribed around each Taskhub POST row (bench.webhook_load)
        env |= SERVER_ENV
        key = taskhub_cli(
            env, home, "create-api-key", email, "--name", "bench-webhooks",
            "--scope", "webhooks:manage",
        )  # fmt: skip
        receiver = stack.enter_context(ThreadedReceiver())
        fixture.webhooks = WebhookLoad(cfg.webhooks, key, receiver)
        notes.append(f"POST rows of Taskhub with {cfg.webhooks} webhooks subscribed (task.*)")
        if cfg.webhook_worker == "separate":
            env["SERVE_WORKER"] = "false"
            notes.append("webhooks delivered by a separate `taskhub worker` at nice 19")
    fixture.code = source_fingerprint()
    notes.append(f"Taskhub code: git {git_state()}, source fingerprint {fixture.code}")
    if ceiling_reset() == "none":
        notes.append(
            "ceiling: asyncpg pool without its per-release reset query, one round trip per "
            "request (BENCH_CEILING_RESET=pool measures against the pool's documented default)"
        )
    else:
        notes.append(
            "ceiling: asyncpg pool with its reset query on every release (BENCH_CEILING_RESET="
            "pool): a second round trip per request that flatters the ratio"
        )
    fixture.backend_pids = lambda: [pid for pids in backends for pid in pids()]
    return fixture


# --- one app ----------------------------------------------------------------------------------


@dataclass
class AppRun:
    app: str
    round: int
    startup_s: float
    rss_mb: list[float]
    background_busy: float
    results: dict[str, Measurement]
    rss_mb_with_mcp: list[float] = field(default_factory=list)  # after the MCP rows, if any


def start_app(app: str, cfg: Config, fx: Fixture, log: Path) -> tuple[Server, int]:
    port = free_port()
    if app == "ceiling":
        argv = [sys.executable, "-m", "uvicorn", "bench.ceiling_app:app", "--host", "127.0.0.1"]
        argv += ["--port", str(port), "--workers", str(cfg.workers), "--no-access-log"]
        argv += ["--log-level", "warning", "--app-dir", str(ROOT)]
        env = ceiling_env(cfg, fx.home, fx.dsn, fx.owner_id, fx.project_id)
    else:
        argv = [str(Path(sys.executable).parent / "taskhub"), "serve"]
        env = {**fx.taskhub_env, "PORT": str(port)}
    return Server(app, argv, env, fx.home, log), port


def start_worker(app: str, cfg: Config, fx: Fixture, log: Path) -> Server | None:
    """With BENCH_WEBHOOK_WORKER=separate (and webhooks): `taskhub worker` as its own process at
    the lowest CPU priority, as a worker Deployment on other cores would leave the API's CPU
    alone; the server then runs no worker loop (`SERVE_WORKER=false`, set in the fixture)."""
    if app != "taskhub" or not cfg.webhooks or cfg.webhook_worker != "separate":
        return None
    argv = ["nice", "-n", "19", str(Path(sys.executable).parent / "taskhub"), "worker"]
    return Server("taskhub worker", argv, fx.taskhub_env, fx.home, log)


def _request(
    port: int,
    method: str,
    path: str,
    token: str,
    body: str | None = None,
    extra: dict[str, str] | None = None,
) -> tuple[int, Any]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if body is not None:
        headers["Content-Type"] = "application/json"
    headers.update(extra or {})
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        data = response.read()
        return response.status, json.loads(data) if data else None
    finally:
        connection.close()


def preflight(port: int, prefix: str, token: str, fx: Fixture) -> dict[str, Any]:
    """One request per endpoint with its expected status, before any load."""
    status, one = _request(port, "GET", f"{prefix}/{fx.sample_id}", token)
    if status != 200:
        raise RuntimeError(f"GET {prefix}/{{id}} answered {status}: {one}")
    status, page = _request(port, "GET", f"{prefix}?limit=50", token)
    if status != 200 or len(page["items"]) != 50:
        raise RuntimeError(f"GET {prefix}?limit=50 answered {status}: {str(page)[:300]}")
    status, created = _request(port, "POST", prefix, token, fx.body)
    if status != 201:
        raise RuntimeError(f"POST {prefix} answered {status}: {created}")
    return {"get": one, "list_first": page["items"][0]["id"], "post_keys": sorted(created)}


def preflight_batch(port: int, token: str, fx: Fixture) -> None:
    """Taskhub's batch answers 200 with a 201 for each of its creates."""
    status, answer = _request(port, "POST", "/v1/tasks/batch", token, fx.batch_body)
    statuses = [r.get("status") for r in answer.get("results", [])] if status == 200 else []
    if statuses != [201] * BATCH_SIZE:
        raise RuntimeError(f"POST /v1/tasks/batch answered {status}: {str(answer)[:300]}")


def _tool_result(port: int, token: str, body: str) -> dict[str, Any]:
    """The structured content of a successful tools/call (a tool error answers 200 too)."""
    extra = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": MCP_PROTOCOL}
    status, answer = _request(port, "POST", "/mcp", token, body, extra)
    result = answer.get("result") if status == 200 and isinstance(answer, dict) else None
    if not isinstance(result, dict) or result.get("isError") or "structuredContent" not in result:
        raise RuntimeError(f"POST /mcp answered {status}: {str(answer)[:300]}")
    return dict(result["structuredContent"])


def preflight_mcp(port: int, token: str, fx: Fixture) -> None:
    """find-tasks answers the list endpoint's page (the same tasks), add-tasks creates all its
    tasks, and the non-atomic batch of as many creates answers a 201 for each."""
    # Creates still in flight from the previous wrk run may land between the two reads.
    for attempt in range(10):
        status, listed = _request(port, "GET", f"/v1/tasks?limit={MCP_PAGE}", token)
        found = _tool_result(port, token, fx.bodies["mcp-find"])
        ids = [t["id"] for t in found["items"]]
        if status == 200 and len(ids) == MCP_PAGE and ids == [t["id"] for t in listed["items"]]:
            break
        if attempt == 9:
            raise RuntimeError(f"find-tasks answered another page: {str(found)[:300]}")
        time.sleep(0.5)
    added = _tool_result(port, token, fx.bodies["mcp-add"])
    if added["succeeded"] != MCP_ADD_SIZE:
        raise RuntimeError(f"add-tasks answered {str(added)[:300]}")
    status, answer = _request(port, "POST", "/v1/tasks/batch", token, fx.bodies["batch50"])
    statuses = [r.get("status") for r in answer.get("results", [])] if status == 200 else []
    if statuses != [201] * MCP_ADD_SIZE:
        raise RuntimeError(f"POST /v1/tasks/batch answered {status}: {str(answer)[:300]}")


def measure_app(
    app: str, round_no: int, cfg: Config, fx: Fixture, wrk: str, seen: dict[str, Any]
) -> AppRun:
    prefix, token = ("/tasks", "") if app == "ceiling" else ("/v1/tasks", fx.token)
    # Rows a previous POST run's in-flight requests wrote after wrk stopped, then a quiet check.
    asyncio.run(reset_tasks(fx.dsn, fx.owner_id, fx.cutoff))
    busy = background_cpu_busy()
    if busy > NOISY_BACKGROUND:
        say(f"WARNING: {busy:.0%} of the CPUs were busy with other work just before this run")
    if app == "taskhub":
        code = source_fingerprint()
        if code != fx.code:
            say(f"WARNING: Taskhub's code changed since the run began ({fx.code} -> {code})")
            fx.notes.append(f"Taskhub's code changed during the run (round {round_no})")
            fx.code = code
    server, port = start_app(app, cfg, fx, RESULTS / f"{app}-r{round_no}.log")
    worker = start_worker(app, cfg, fx, RESULTS / f"{app}-worker-r{round_no}.log")
    try:
        startup = server.wait_healthy(port)
        say(f"round {round_no} {app}: healthy {startup:.2f} s after start (port {port})")
        answers = preflight(port, prefix, token, fx)
        if app == "taskhub":
            preflight_batch(port, token, fx)
        asyncio.run(reset_tasks(fx.dsn, fx.owner_id, fx.cutoff))
        _compare(app, answers, seen)
        workers = server.workers()
        results: dict[str, Measurement] = {}
        endpoints = ENDPOINTS + ((BATCH_ENDPOINT,) if app == "taskhub" else ())
        if app == "taskhub" and cfg.mcp:
            endpoints += MCP_ENDPOINTS
        rss: list[float | None] | None = None
        for endpoint in endpoints:
            body = fx.bodies.get(endpoint.mode, fx.body)
            mode = endpoint.wrk_mode or endpoint.mode
            connections = cfg.mcp_add_connections if endpoint.mode in FEW_CONNECTIONS else 0
            if endpoint is MCP_ENDPOINTS[0]:
                # A worker loads the MCP SDK on its first MCP request: the RSS target is for
                # workers that serve the HTTP API only, so their peak is taken before it.
                rss = [peak_rss_mb(pid) for pid in workers]
                preflight_mcp(port, token, fx)
                asyncio.run(reset_tasks(fx.dsn, fx.owner_id, fx.cutoff))
            hooks = fx.webhooks if app == "taskhub" and endpoint.mode == "post" else None
            if hooks:
                hooks.subscribe(port)
            args = (wrk, cfg, port, mode, prefix, token, fx.ids_file)
            warmup = max(cfg.warmup, MCP_WARMUP_MIN) if mode == "mcp" else cfg.warmup
            warm = run_wrk(*args, warmup, body, connections)
            if warm.error_count:
                say(f"warning: {warm.errors} errors during the warm-up of {endpoint.label}")
            app_before, backend_before = cpu_ticks(workers), cpu_ticks(fx.backend_pids())
            if hooks:
                hooks.measuring()
            result = run_wrk(*args, cfg.duration, body, connections)
            result.app_cpu_s = round(cpu_seconds_between(app_before, cpu_ticks(workers)), 2)
            backend_after = cpu_ticks(fx.backend_pids())
            result.backend_cpu_s = round(cpu_seconds_between(backend_before, backend_after), 2)
            results[endpoint.mode] = result
            if hooks:
                note, delivered = hooks.finish(port, fx.dsn, result.requests)
                fx.notes.append(f"round {round_no}: {note}")
                if not delivered:  # the row is void, as for failed requests
                    result.errors["no webhook delivery"] = 1
            flag = f"  !! ERRORS {result.errors}" if result.error_count else ""
            say(
                f"round {round_no} {app:8} {endpoint.label:24} {result.rps:9.1f} req/s  "
                f"p50 {result.p50_ms:7.2f} ms  p99 {result.p99_ms:7.2f} ms  "
                f"{result.requests_per_cpu_s:7.1f} req/CPU-s{flag}"
            )
            if endpoint.mode in CREATING:
                asyncio.run(reset_tasks(fx.dsn, fx.owner_id, fx.cutoff))
        last = [peak_rss_mb(pid) for pid in workers]
        if any(r.error_count for r in results.values()):
            say(server.tail())
        rss_mb = [round(r, 1) for r in (rss or last) if r is not None]
        with_mcp = [round(r, 1) for r in last if r is not None] if rss is not None else []
        return AppRun(app, round_no, startup, rss_mb, round(busy, 3), results, with_mcp)
    finally:
        shielded(server.stop)()
        if worker is not None:
            shielded(worker.stop)()


def _compare(app: str, answers: dict[str, Any], seen: dict[str, Any]) -> None:
    """Both apps must serve the same rows in the same JSON shape."""
    if not seen:
        seen.update(answers, app=app)
        return
    for key in ("get", "list_first", "post_keys"):
        if answers[key] != seen[key]:
            say(f"WARNING: {app} and {seen['app']} differ on {key}: {answers[key]!r} vs "
                f"{seen[key]!r}")  # fmt: skip


# --- report -----------------------------------------------------------------------------------


def _median(values: list[float]) -> float:
    return round(statistics.median(values), 2)


def summarise(cfg: Config, runs: list[AppRun], fx: Fixture) -> dict[str, Any]:
    rows = []
    for endpoint in ENDPOINTS:
        row: dict[str, Any] = {
            "endpoint": endpoint.label,
            "floor": endpoint.floor,
            "goal": endpoint.goal,
        }
        for app in APPS:
            mine = [r.results[endpoint.mode] for r in runs if r.app == app]
            row[app] = {
                "rps": _median([m.rps for m in mine]),
                "p50_ms": _median([m.p50_ms for m in mine]),
                "p99_ms": _median([m.p99_ms for m in mine]),
                "rounds_rps": [m.rps for m in mine],
                "requests_per_cpu_s": _median([m.requests_per_cpu_s for m in mine]),
                "errors": sum(m.error_count for m in mine),
            }
        ceiling, taskhub = row["ceiling"], row["taskhub"]
        row["ratio"] = round(taskhub["rps"] / ceiling["rps"], 3) if ceiling["rps"] else None
        row["cpu_ratio"] = (
            round(taskhub["requests_per_cpu_s"] / ceiling["requests_per_cpu_s"], 3)
            if ceiling["requests_per_cpu_s"]
            else None
        )
        row["round_ratios"] = [
            round(t / c, 3) if c else None
            for c, t in zip(ceiling["rounds_rps"], taskhub["rounds_rps"], strict=True)
        ]
        row["p99_factor"] = (
            round(taskhub["p99_ms"] / ceiling["p99_ms"], 2) if ceiling["p99_ms"] else None
        )
        rows.append(row)
    apps = {
        app: {
            "startup_s": [round(r.startup_s, 3) for r in runs if r.app == app],
            "startup_median_s": _median([r.startup_s for r in runs if r.app == app]),
            "peak_rss_mb_per_worker": max(
                ([r.rss_mb for r in runs if r.app == app]), key=lambda x: max(x, default=0)
            ),
            "peak_rss_mb_per_worker_with_mcp": max(
                ([r.rss_mb_with_mcp for r in runs if r.app == app]),
                key=lambda x: max(x, default=0),
            ),
        }
        for app in APPS
    }
    return {
        "batch": batch_row(runs),
        "mcp_find": mcp_find_row(runs),
        "mcp_add": mcp_add_row(runs, cfg.mcp_add_connections),
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "background_busy": [r.background_busy for r in runs],
        "host": {"cpus": os.cpu_count(), "kernel": os.uname().release},
        "config": asdict(cfg),
        "notes": fx.notes,
        "endpoints": rows,
        "apps": apps,
        "runs": [
            {
                **asdict(r),
                "results": {
                    k: {**asdict(v), "requests_per_cpu_s": v.requests_per_cpu_s}
                    for k, v in r.results.items()
                },
            }
            for r in runs
        ],
    }


def batch_row(runs: list[AppRun]) -> dict[str, Any] | None:
    """Tasks created per second by batches of BATCH_SIZE against single POSTs, per Taskhub
    round (the same server, one after the other), and the median of those ratios."""
    rounds = [r.results for r in runs if r.app == "taskhub" and "batch" in r.results]
    if not rounds:
        return None
    batch_tasks = [m["batch"].rps * BATCH_SIZE for m in rounds]
    single_tasks = [m["post"].rps for m in rounds]
    pairs = zip(batch_tasks, single_tasks, strict=True)
    ratios = [round(b / s, 2) if s else None for b, s in pairs]
    known = [r for r in ratios if r is not None]
    return {
        "endpoint": BATCH_LABEL,
        "goal": BATCH_GOAL,
        "batch_tasks_per_s": _median(batch_tasks),
        "single_tasks_per_s": _median(single_tasks),
        "batch_p50_ms": _median([m["batch"].p50_ms for m in rounds]),
        "batch_p99_ms": _median([m["batch"].p99_ms for m in rounds]),
        "round_ratios": ratios,
        "ratio": _median(known) if known else None,
        "errors": sum(m["batch"].error_count for m in rounds),
    }


def render_batch(row: dict[str, Any] | None) -> tuple[list[str], list[str]]:
    """The batch row's lines and its missed target, if any."""
    if row is None:
        return [], []
    per_round = " ".join(f"{r:.2f}" for r in row["round_ratios"] if r is not None)
    verdict = "goal met" if (row["ratio"] or 0) >= row["goal"] else "BELOW GOAL"
    if row["errors"]:
        verdict = f"VOID: {row['errors']} errors"
    lines = [
        "",
        "| Taskhub only | batch tasks/s | batch p50 ms | p99 ms | single POST tasks/s "
        "| ratio (median of rounds) | per round | goal | verdict |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- | --- | --- |",
        f"| {row['endpoint']} | {row['batch_tasks_per_s']:.0f} | {row['batch_p50_ms']:.2f} "
        f"| {row['batch_p99_ms']:.2f} | {row['single_tasks_per_s']:.0f} "
        f"| **{row['ratio'] or 0:.2f}** | {per_round} | >= {row['goal']:.0f}x | {verdict} |",
    ]
    missed = [] if verdict != "BELOW GOAL" else [f"{row['endpoint']}: {row['ratio']}x < 10x"]
    return lines, missed


def _paired_rounds(runs: list[AppRun], mine: str, theirs: str) -> dict[str, Any] | None:
    """Two measurements of each Taskhub round that has both, as a row's common part: each side's
    medians, every round's ratio `mine`/`theirs` of req/s and the median of those ratios."""
    rounds = [r.results for r in runs if r.app == "taskhub" and {mine, theirs} <= r.results.keys()]
    if not rounds:
        return None
    ratios = [round(m[mine].rps / m[theirs].rps, 3) if m[theirs].rps else None for m in rounds]
    known = [r for r in ratios if r is not None]
    side = {
        key: {
            "rps": _median([m[key].rps for m in rounds]),
            "p50_ms": _median([m[key].p50_ms for m in rounds]),
            "p99_ms": _median([m[key].p99_ms for m in rounds]),
            "requests_per_cpu_s": _median([m[key].requests_per_cpu_s for m in rounds]),
        }
        for key in (mine, theirs)
    }
    per_cpu = [
        m[mine].requests_per_cpu_s / m[theirs].requests_per_cpu_s
        for m in rounds
        if m[theirs].requests_per_cpu_s
    ]
    return {
        "mcp": side[mine],
        "http": side[theirs],
        "round_ratios": ratios,
        "ratio": round(statistics.median(known), 3) if known else None,
        "cpu_ratio": round(statistics.median(per_cpu), 3) if per_cpu else None,
        "errors": sum(m[mine].error_count + m[theirs].error_count for m in rounds),
    }


def mcp_find_row(runs: list[AppRun]) -> dict[str, Any] | None:
    """find-tasks over MCP against the list endpoint, the same page, in requests (pages) per
    second of each Taskhub round; goal MCP_FIND_GOAL."""
    row = _paired_rounds(runs, "mcp-find", "list")
    if row is None:
        return None
    return {"endpoint": MCP_FIND_LABEL, "unit": "req/s", "page": MCP_PAGE, **row,
            "goal": MCP_FIND_GOAL}  # fmt: skip


def mcp_add_row(runs: list[AppRun], connections: int) -> dict[str, Any] | None:
    """add-tasks of MCP_ADD_SIZE over MCP against a non-atomic batch of as many creates, in tasks
    created per second (each request creates MCP_ADD_SIZE on both sides); no goal."""
    row = _paired_rounds(runs, "mcp-add", "batch50")
    if row is None:
        return None
    for side in ("mcp", "http"):
        row[side]["tasks_per_s"] = round(row[side]["rps"] * MCP_ADD_SIZE, 1)
    return {"endpoint": MCP_ADD_LABEL, "unit": "tasks/s", "size": MCP_ADD_SIZE, **row,
            "goal": None, "connections": connections}  # fmt: skip


def render_mcp(
    find: dict[str, Any] | None, add: dict[str, Any] | None
) -> tuple[list[str], list[str]]:
    """The MCP rows' lines (a row without a goal shows its ratio only) and a missed goal."""
    rows = [row for row in (find, add) if row is not None]
    if not rows:
        return [], []
    lines = [
        "",
        "| Taskhub only | MCP | p50 ms | p99 ms | HTTP API | p50 ms | p99 ms "
        "| ratio MCP/HTTP (median of rounds) | per round | goal | verdict | req/CPU-s ratio |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | --- | ---: |",
    ]
    missed: list[str] = []
    for row in rows:
        ratio, goal = row["ratio"] or 0.0, row["goal"]
        if row["errors"]:
            verdict = f"VOID: {row['errors']} errors"
        elif not (row["mcp"]["rps"] and row["http"]["rps"]):
            verdict = "VOID: no request completed"
        elif goal is None:
            verdict = "no goal: figure only"
        else:
            verdict = "goal met" if ratio >= goal else "BELOW GOAL"
        if verdict == "BELOW GOAL":
            missed.append(f"{row['endpoint']}: {ratio:.2f} < {goal:.2f}")
        key = "tasks_per_s" if row["unit"] == "tasks/s" else "rps"
        mcp, rest = row["mcp"], row["http"]
        per_round = " ".join(f"{r:.2f}" for r in row["round_ratios"] if r is not None)
        lines.append(
            f"| {row['endpoint']} | {mcp[key]:.0f} {row['unit']} | {mcp['p50_ms']:.2f} "
            f"| {mcp['p99_ms']:.2f} | {rest[key]:.0f} {row['unit']} | {rest['p50_ms']:.2f} "
            f"| {rest['p99_ms']:.2f} | **{ratio:.2f}** | {per_round} "
            f"| {'none' if goal is None else f'>= {goal:.2f}'} | {verdict} "
            f"| {row['cpu_ratio'] or 0:.2f} |"
        )
    if add is not None:
        lines += [
            "",
            f"{add['endpoint']}: wrk -c{add['connections']} for both (a request creates "
            f"{add['size']} tasks one after another); the ratio is tasks/s over tasks/s.",
        ]
    return lines, missed


def _verdict(ratio: float | None, floor: float, goal: float) -> str:
    if ratio is None:
        return "n/a"
    if ratio >= goal:
        return "goal met"
    return "floor met" if ratio >= floor else "BELOW FLOOR"


def render(summary: dict[str, Any]) -> tuple[str, list[str]]:
    """The markdown table and the list of missed targets."""
    cfg = summary["config"]
    missed: list[str] = []
    lines = [
        f"Taskhub vs ceiling: median of {cfg['rounds']} alternating round(s), "
        f"wrk -t{cfg['threads']} -c{cfg['connections']} -d{cfg['duration']}s "
        f"(warm-up {cfg['warmup']} s), "
        f"{cfg['workers']} workers each, pool {cfg['pool_size']}+{cfg['pool_overflow']}, "
        f"{cfg['tasks']} tasks, {summary['host']['cpus']} CPUs",
        "",
        "| endpoint | ceiling req/s | p50 ms | p99 ms | taskhub req/s | p50 ms | p99 ms "
        "| ratio | per round | floor / goal | verdict | req/CPU-s ceiling, taskhub, ratio |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | --- | --- |",
    ]
    for row in summary["endpoints"]:
        c, t = row["ceiling"], row["taskhub"]
        verdict = _verdict(row["ratio"], row["floor"], row["goal"])
        if c["errors"] or t["errors"]:
            verdict = f"VOID: {c['errors']} + {t['errors']} errors"
        if verdict == "BELOW FLOOR":
            missed.append(f"{row['endpoint']}: ratio {row['ratio']} < floor {row['floor']}")
        if row["p99_factor"] is not None and row["p99_factor"] > P99_FACTOR_MAX:
            missed.append(f"{row['endpoint']}: p99 {row['p99_factor']}x the ceiling's (max 2x)")
        per_round = " ".join(f"{r:.2f}" for r in row["round_ratios"] if r is not None)
        lines.append(
            f"| {row['endpoint']} | {c['rps']:.0f} | {c['p50_ms']:.2f} | {c['p99_ms']:.2f} "
            f"| {t['rps']:.0f} | {t['p50_ms']:.2f} | {t['p99_ms']:.2f} "
            f"| **{row['ratio'] or 0:.2f}** "
            f"| {per_round} | {row['floor']:.2f} / {row['goal']:.2f} | {verdict} "
            f"| {c['requests_per_cpu_s']:.0f}, {t['requests_per_cpu_s']:.0f}, "
            f"{row['cpu_ratio'] or 0:.2f} |"
        )
    batch_lines, batch_missed = render_batch(summary.get("batch"))
    lines += batch_lines
    missed += batch_missed
    mcp_lines, mcp_missed = render_mcp(summary.get("mcp_find"), summary.get("mcp_add"))
    lines += mcp_lines
    missed += mcp_missed
    lines += ["", "| app | start to /health 200 (median; runs) | peak RSS per worker |"]
    lines.append("| --- | --- | --- |")
    for app, info in summary["apps"].items():
        runs = ", ".join(f"{s:.2f}" for s in info["startup_s"])
        rss = ", ".join(f"{r:.1f} MiB" for r in info["peak_rss_mb_per_worker"])
        lines.append(f"| {app} | {info['startup_median_s']:.2f} s ({runs}) | {rss} |")
    taskhub = summary["apps"]["taskhub"]
    with_mcp = taskhub.get("peak_rss_mb_per_worker_with_mcp")
    if with_mcp:
        rss = ", ".join(f"{r:.1f} MiB" for r in with_mcp)
        lines += [
            "",
            f"Taskhub peak RSS per worker after the MCP rows: {rss} (the MCP SDK loads on a "
            "worker's first MCP request; the RSS target is for the figures above, taken before)",
        ]
    if taskhub["startup_median_s"] >= STARTUP_MAX_S:
        missed.append(f"taskhub start to healthy {taskhub['startup_median_s']} s (max 2 s)")
    if any(r >= RSS_MAX_MB for r in taskhub["peak_rss_mb_per_worker"]):
        missed.append(f"taskhub peak RSS per worker {taskhub['peak_rss_mb_per_worker']} (max 120)")
    p99 = ", ".join(f"{row['endpoint']} {row['p99_factor']}x" for row in summary["endpoints"])
    lines += ["", f"Taskhub p99 / ceiling p99 (target <= 2x): {p99}"]
    lines.append(
        "req/CPU-s: requests per CPU second of the app's workers plus the throwaway PostgreSQL "
        "and Redis (not wrk); a cross-check of the ratio that other load on the machine moves "
        "much less than req/s."
    )
    lines += [f"Note: {note}" for note in summary["notes"]]
    busy = summary["background_busy"]
    shown = ", ".join(f"{b:.0%}" for b in busy)
    if max(busy, default=0) > NOISY_BACKGROUND:
        lines.append(
            f"WARNING: the machine was busy with other work before some runs ({shown} of the "
            "CPUs): the figures are noisy; rerun on a quiet machine."
        )
    else:
        lines.append(f"Background CPU before each run: {shown} (quiet)")
    return "\n".join(lines), missed


def write_results(summary: dict[str, Any], table: str) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    for name in (f"bench-{stamp}", "latest"):
        (RESULTS / f"{name}.json").write_text(json.dumps(summary, indent=2) + "\n")
        (RESULTS / f"{name}.md").write_text(table + "\n")
    return RESULTS / f"bench-{stamp}.json"


# --- main -------------------------------------------------------------------------------------


def serve_forever(app: str, cfg: Config, fx: Fixture) -> None:
    server, port = start_app(app, cfg, fx, RESULTS / f"{app}.log")
    try:
        startup = server.wait_healthy(port)
        prefix = "/tasks" if app == "ceiling" else "/v1/tasks"
        say(f"{app} healthy after {startup:.2f} s on http://127.0.0.1:{port}{prefix}")
        say(f"worker pids: {' '.join(map(str, server.workers()))}; log: {server.log_path}")
        if app == "taskhub":
            say(f"token: {fx.token}")
        say(f"a task: {prefix}/{fx.sample_id}; ids file: {fx.ids_file}; Ctrl-C stops")
        while server.process.poll() is None:
            time.sleep(1)
    finally:
        shielded(server.stop)()


SCALE_P50_MAX = 1.5  # list p50 at the large size over the p50 at BENCH_TASKS


def list_p50(cfg: Config, fx: Fixture, wrk: str, label: str) -> Measurement:
    """Taskhub's list (limit 50) for the bench user, on a freshly started server."""
    server, port = start_app("taskhub", cfg, fx, RESULTS / f"scale-{label}.log")
    try:
        server.wait_healthy(port)
        preflight(port, "/v1/tasks", fx.token, fx)
        asyncio.run(reset_tasks(fx.dsn, fx.owner_id, fx.cutoff))
        args = (wrk, cfg, port, "list", "/v1/tasks", fx.token, fx.ids_file)
        run_wrk(*args, cfg.warmup, fx.body)
        result = run_wrk(*args, cfg.duration, fx.body)
        say(
            f"{label}: list {result.rps:.1f} req/s, p50 {result.p50_ms:.2f} ms, "
            f"p99 {result.p99_ms:.2f} ms, {result.error_count} errors"
        )
        return result
    finally:
        shielded(server.stop)()


def scale(cfg: Config, fx: Fixture, wrk: str, stack: ExitStack) -> int:
    """The list p50 at BENCH_TASKS, then again once BENCH_SCALE_TASKS tasks across
    BENCH_SCALE_USERS users in shared projects are in the database."""
    total = _env_int("BENCH_SCALE_TASKS", 1_000_000)
    users = _env_int("BENCH_SCALE_USERS", 1_000)
    small = list_p50(cfg, fx, wrk, f"{cfg.tasks} tasks")
    started = time.perf_counter()
    tag = f"scale-{uuid.uuid4().hex[:8]}"
    others = asyncio.run(seed_population(fx.dsn, users - 1, total - cfg.tasks, tag=tag))
    if os.environ.get("BENCH_DATABASE_URL"):
        stack.callback(lambda: asyncio.run(delete_population(fx.dsn, others)))
    say(
        f"seeded {total - cfg.tasks} tasks for {len(others)} more users in shared projects in "
        f"{time.perf_counter() - started:.1f} s"
    )
    large = list_p50(cfg, fx, wrk, f"{total} tasks")
    ratio = large.p50_ms / small.p50_ms if small.p50_ms else float("inf")
    summary = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "config": asdict(cfg),
        "scale": {"tasks": total, "users": users},
        "small": {**asdict(small)},
        "large": {**asdict(large)},
        "p50_ratio": round(ratio, 3),
        "target": SCALE_P50_MAX,
        "notes": fx.notes,
    }
    (RESULTS / "scale-latest.json").write_text(json.dumps(summary, indent=2) + "\n")
    verdict = "met" if ratio <= SCALE_P50_MAX else "MISSED"
    print(
        f"\nlist p50: {small.p50_ms:.2f} ms at {cfg.tasks} tasks, {large.p50_ms:.2f} ms at "
        f"{total} tasks ({users} users): {ratio:.2f}x (target <= {SCALE_P50_MAX}x, {verdict})"
        "\n(written to bench/results/scale-latest.json)"
    )
    if small.error_count or large.error_count:
        print("!! failed requests during the scale run: the figures are VOID")
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.run", description="Taskhub vs the ceiling")
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 round of 3 s")
    parser.add_argument("--strict", action="store_true", help="exit 3 when a target is missed")
    parser.add_argument("--serve", choices=APPS, help="set up, start one app and wait")
    parser.add_argument(
        "--scale",
        action="store_true",
        help="list p50 at BENCH_TASKS vs at BENCH_SCALE_TASKS tasks (BENCH_SCALE_USERS users)",
    )
    args = parser.parse_args(argv)
    cfg = load_config(args.quick)
    signal.signal(signal.SIGTERM, _on_sigterm)
    # Also when started in the background, where the shell may have ignored SIGINT.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    RESULTS.mkdir(parents=True, exist_ok=True)
    runs: list[AppRun] = []
    try:
        with ExitStack() as stack:
            wrk = ensure_wrk()
            fx = prepare(cfg, stack)
            if args.serve:
                serve_forever(args.serve, cfg, fx)
                return 0
            if args.scale:
                return scale(cfg, fx, wrk, stack)
            seen: dict[str, Any] = {}
            for round_no in range(1, cfg.rounds + 1):
                for app in APPS:
                    runs.append(measure_app(app, round_no, cfg, fx, wrk, seen))
            summary = summarise(cfg, runs, fx)
    except (KeyboardInterrupt, Interrupted):
        say("interrupted; everything started has been stopped")
        return 130
    except (RuntimeError, OSError, subprocess.CalledProcessError) as exc:
        say(f"FAILED: {exc}")
        return 2
    table, missed = render(summary)
    path = write_results(summary, table)
    print()
    print(table)
    print(f"\n(written to {path} and bench/results/latest.md)")
    errors = sum(r.error_count for run in runs for r in run.results.values())
    if errors:
        banner = "!" * 78
        print(f"\n{banner}\n!! {errors} FAILED REQUESTS (non-2xx or socket errors): the figures "
              f"above are VOID.\n!! See bench/results/*.log\n{banner}")  # fmt: skip
        return 1
    if missed:
        print("\nTargets missed:\n" + "\n".join(f"  - {m}" for m in missed))
        return 3 if args.strict else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
