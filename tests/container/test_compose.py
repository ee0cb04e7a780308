"""compose.yaml: it validates, and the whole stack runs, keeps its data and cleans up."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.container.conftest import (
    BuiltImage,
    free_port,
    report,
    require_image,
    run,
    wait_for_http,
)

INSIDE_PORT = 9000


def compose_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"PORT", "APP_PORT", "DATABASE_URL"}}
    env.update(extra)
    return env


def rendered(compose_cli: list[str], **env: str) -> dict[str, object]:
    proc = run([*compose_cli, "config", "--format", "json"], env=compose_env(**env))
    config: dict[str, object] = json.loads(proc.stdout)
    return config


def test_compose_file_validates(compose_cli: list[str]) -> None:
    run([*compose_cli, "config", "-q"], env=compose_env())


def test_compose_hardens_the_app_service(compose_cli: list[str]) -> None:
    app = rendered(compose_cli)["services"]["app"]  # type: ignore[index]
    assert app["read_only"] is True
    assert app["cap_drop"] == ["ALL"]
    assert "no-new-privileges:true" in app["security_opt"]
    assert [t.split(":")[0] for t in app["tmpfs"]] == ["/tmp"]  # noqa: S108 (a mount point)
    for dependency in ("db", "redis"):
        assert app["depends_on"][dependency]["condition"] == "service_healthy"
    assert app["develop"]["watch"]


def test_the_worker_service_runs_the_jobs_the_app_leaves_out(compose_cli: list[str]) -> None:
    services = rendered(compose_cli)["services"]
    app, worker = services["app"], services["worker"]  # type: ignore[index]
    assert app["environment"]["SERVE_WORKER"] == "false"
    assert worker["command"] == ["taskhub", "worker"]
    assert worker["image"] == app["image"]
    assert worker["environment"]["DATABASE_URL"] == app["environment"]["DATABASE_URL"]
    # The app's entrypoint migrates; the worker starts after it is healthy.
    assert worker["depends_on"]["app"]["condition"] == "service_healthy"
    assert not worker.get("ports")
    port = worker["environment"]["WORKER_PORT"]
    assert f"127.0.0.1:{port}/health/live" in " ".join(worker["healthcheck"]["test"])
    assert worker["read_only"] is True
    assert worker["cap_drop"] == ["ALL"]
    assert "no-new-privileges:true" in worker["security_opt"]


def test_the_pgbouncer_profile_runs_a_second_app_through_pgbouncer(
    compose_cli: list[str],
) -> None:
    plain = rendered(compose_cli)["services"]
    assert "pgbouncer" not in plain  # type: ignore[operator]
    assert "app-pgbouncer" not in plain  # type: ignore[operator]
    config = rendered([*compose_cli, "--profile", "pgbouncer"])
    services = config["services"]  # type: ignore[index]
    app = services["app-pgbouncer"]  # type: ignore[index]
    env = app["environment"]
    assert env["DATABASE_PGBOUNCER"] == "true"
    assert "@pgbouncer:6432/" in env["DATABASE_URL"]
    assert "@db:5432/" in env["MIGRATION_DATABASE_URL"]
    assert app["read_only"] is True
    assert [p["published"] for p in app["ports"]] == ["8001"]
    ini = config["configs"]["pgbouncer-ini"]["content"]  # type: ignore[index]
    assert "pool_mode = transaction" in ini
    pgbouncer = services["pgbouncer"]  # type: ignore[index]
    assert pgbouncer["cap_drop"] == ["ALL"]
    assert "no-new-privileges:true" in pgbouncer["security_opt"]


def test_port_variable_moves_the_listening_and_published_port(compose_cli: list[str]) -> None:
    app = rendered(compose_cli, PORT=str(INSIDE_PORT))["services"]["app"]  # type: ignore[index]
    assert app["environment"]["PORT"] == str(INSIDE_PORT)
    [port] = app["ports"]
    assert port["target"] == INSIDE_PORT
    assert port["published"] == str(INSIDE_PORT)


@dataclass(frozen=True)
class Stack:
    cli: list[str]
    env: dict[str, str]
    url: str


@pytest.fixture(scope="module")
def stack(compose_cli: list[str], image: BuiltImage) -> Iterator[Stack]:
    """`docker compose up --wait` with the image under test, PORT=9000 inside and two workers."""
    require_image(os.environ.get("POSTGRES_IMAGE", "postgres:16-alpine"))
    require_image(os.environ.get("REDIS_IMAGE", "redis:7-alpine"))
    project = f"taskhub-ct-{uuid.uuid4().hex[:8]}"
    host_port = free_port()
    env = compose_env(
        TASKHUB_IMAGE=image.tag, PORT=str(INSIDE_PORT), APP_PORT=str(host_port), WORKERS="2"
    )
    cli = [*compose_cli, "-p", project]
    started = time.monotonic()
    try:
        run([*cli, "up", "--wait", "--no-build", "--quiet-pull"], env=env, timeout=300)
        report(f"docker compose up --wait: {time.monotonic() - started:.1f} s")
        yield Stack(cli, env, f"http://127.0.0.1:{host_port}")
    finally:
        run([*cli, "down", "-v", "--timeout", "20"], env=env, check=False, timeout=120)


def test_stack_serves_users_and_tasks_and_survives_a_restart(stack: Stack) -> None:
    ready = httpx.get(f"{stack.url}/health/ready", timeout=5)
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {"database": "ok", "redis": "ok"}

    email, password = f"{uuid.uuid4().hex[:10]}@example.com", "correct horse battery staple"
    created = httpx.post(
        f"{stack.url}/v1/users", json={"email": email, "password": password}, timeout=10
    )
    assert created.status_code == 201, created.text
    session = httpx.post(
        f"{stack.url}/v1/auth/sessions", json={"email": email, "password": password}, timeout=10
    )
    assert session.status_code == 201, session.text
    auth = {"Authorization": f"Bearer {session.json()['token']}"}
    task = httpx.post(
        f"{stack.url}/v1/tasks", json={"title": "ship the image"}, headers=auth, timeout=10
    )
    assert task.status_code == 201, task.text
    task_id = task.json()["id"]

    # DATABASE_URL points at the compose PostgreSQL: the row is there.
    count = run(
        [*stack.cli, "exec", "-T", "db", "psql", "-U", "taskhub", "-d", "taskhub", "-tAc",
         f"SELECT count(*) FROM users WHERE email = '{email}'"],
        env=stack.env,
    )  # fmt: skip
    assert count.stdout.strip() == "1"

    # The worker service is healthy and has run its job against the same database.
    worker = run([*stack.cli, "ps", "--format", "{{.Health}}", "worker"], env=stack.env)
    assert worker.stdout.strip() == "healthy", worker.stdout
    deadline = time.monotonic() + 60
    while True:
        ran = run(
            [*stack.cli, "exec", "-T", "db", "psql", "-U", "taskhub", "-d", "taskhub", "-tAc",
             "SELECT count(*) FROM worker_jobs WHERE name = 'purge_expired_sessions'"
             " AND last_success_at IS NOT NULL"],
            env=stack.env,
        )  # fmt: skip
        if ran.stdout.strip() == "1" or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert ran.stdout.strip() == "1", "the worker never completed its first run"

    started = time.monotonic()
    run([*stack.cli, "restart", "app"], env=stack.env, timeout=120)
    run([*stack.cli, "up", "--wait", "--no-build", "app"], env=stack.env, timeout=180)
    wait_for_http(f"{stack.url}/health", timeout=60)
    report(f"docker compose restart app -> healthy: {time.monotonic() - started:.1f} s")

    again = httpx.get(f"{stack.url}/v1/tasks/{task_id}", headers=auth, timeout=10)
    assert again.status_code == 200, again.text
    assert again.json()["title"] == "ship the image"


def test_down_removes_containers_and_volumes(stack: Stack) -> None:
    project = stack.cli[stack.cli.index("-p") + 1]
    run([*stack.cli, "down", "-v", "--timeout", "20"], env=stack.env, timeout=120)
    label = f"label=com.docker.compose.project={project}"
    containers = run(["docker", "ps", "-a", "-q", "--filter", label]).stdout.split()
    volumes = run(["docker", "volume", "ls", "-q", "--filter", label]).stdout.split()
    assert containers == []
    assert volumes == []


@dataclass(frozen=True)
class PgBouncerStack:
    cli: list[str]
    env: dict[str, str]
    url: str
    pgbouncer_url: str


@pytest.fixture
def pgbouncer_stack(compose_cli: list[str], image: BuiltImage) -> Iterator[PgBouncerStack]:
    """`docker compose --profile pgbouncer up --wait`: app and app-pgbouncer on one database."""
    for var, default in (
        ("POSTGRES_IMAGE", "postgres:16-alpine"),
        ("REDIS_IMAGE", "redis:7-alpine"),
        ("PGBOUNCER_IMAGE", "edoburu/pgbouncer:v1.24.1-p1"),
    ):
        require_image(os.environ.get(var, default))
    project = f"taskhub-ct-pgb-{uuid.uuid4().hex[:8]}"
    app_port, pgbouncer_port = free_port(), free_port()
    env = compose_env(
        TASKHUB_IMAGE=image.tag, APP_PORT=str(app_port), APP_PGBOUNCER_PORT=str(pgbouncer_port)
    )
    cli = [*compose_cli, "-p", project, "--profile", "pgbouncer"]
    started = time.monotonic()
    try:
        run([*cli, "up", "--wait", "--no-build", "--quiet-pull"], env=env, timeout=300)
        report(f"docker compose --profile pgbouncer up --wait: {time.monotonic() - started:.1f} s")
        yield PgBouncerStack(
            cli, env, f"http://127.0.0.1:{app_port}", f"http://127.0.0.1:{pgbouncer_port}"
        )
    finally:
        run([*cli, "down", "-v", "--timeout", "20"], env=env, check=False, timeout=120)


def test_the_pgbouncer_profile_serves_through_pgbouncer_on_the_same_database(
    pgbouncer_stack: PgBouncerStack,
) -> None:
    stack = pgbouncer_stack
    running = run([*stack.cli, "ps", "--format", "{{.Service}} {{.State}}"], env=stack.env)
    states = dict(line.split(" ", 1) for line in running.stdout.splitlines() if line.strip())
    assert states.get("pgbouncer") == "running", running.stdout
    assert states.get("app-pgbouncer") == "running", running.stdout

    ready = httpx.get(f"{stack.pgbouncer_url}/health/ready", timeout=5)
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {"database": "ok", "redis": "ok"}

    # Every request below goes to the app whose DATABASE_URL is PgBouncer's.
    email, password = f"{uuid.uuid4().hex[:10]}@example.com", "correct horse battery staple"
    url = stack.pgbouncer_url
    created = httpx.post(f"{url}/v1/users", json={"email": email, "password": password}, timeout=10)
    assert created.status_code == 201, created.text
    session = httpx.post(
        f"{url}/v1/auth/sessions", json={"email": email, "password": password}, timeout=10
    )
    assert session.status_code == 201, session.text
    auth = {"Authorization": f"Bearer {session.json()['token']}"}
    task = httpx.post(
        f"{url}/v1/tasks", json={"title": "pooled by pgbouncer"}, headers=auth, timeout=10
    )
    assert task.status_code == 201, task.text
    task_id = task.json()["id"]
    read = httpx.get(f"{url}/v1/tasks/{task_id}", headers=auth, timeout=10)
    assert read.status_code == 200, read.text
    assert read.json()["title"] == "pooled by pgbouncer"

    # The plain app (direct to db) sees the same user, session and task: one database.
    direct = httpx.get(f"{stack.url}/v1/tasks/{task_id}", headers=auth, timeout=10)
    assert direct.status_code == 200, direct.text
    assert direct.json()["title"] == "pooled by pgbouncer"

    # The app's connections really go through PgBouncer: db's clients include its server pool.
    pgbouncer_id = run([*stack.cli, "ps", "-q", "pgbouncer"], env=stack.env).stdout.strip()
    pgbouncer_ip = run(
        ["docker", "inspect", "-f",
         "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", pgbouncer_id]
    ).stdout.strip()  # fmt: skip
    pooled = run(
        [*stack.cli, "exec", "-T", "db", "psql", "-U", "taskhub", "-d", "taskhub", "-tAc",
         f"SELECT count(*) FROM pg_stat_activity WHERE client_addr = '{pgbouncer_ip}'"],
        env=stack.env,
    )  # fmt: skip
    assert int(pooled.stdout.strip()) >= 1, pooled.stdout
