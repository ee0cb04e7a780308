"""The service image: lint, contents, size, and how it runs and stops."""

from __future__ import annotations

import json
import time

import httpx

from tests.container.conftest import (
    DOCUMENTED_BASE_MB,
    SIZE_LIMIT_MB,
    BuiltImage,
    Served,
    inspect,
    report,
    run,
    wait_for_http,
)

# Development tools, and pip: the venv is built by uv and never changed at run time.
NOT_IN_IMAGE = {"pytest", "ruff", "mypy", "testcontainers", "hypothesis", "schemathesis", "pip"}


def test_hadolint_passes(hadolint: str) -> None:
    proc = run([hadolint, "Dockerfile"], check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_image_is_small_enough(image: BuiltImage) -> None:
    total = DOCUMENTED_BASE_MB + image.own_mb
    report(
        f"image size: {image.size_bytes / 1e6:.1f} MB on this base ({image.base}, "
        f"{image.base_size_bytes / 1e6:.1f} MB); own layers {image.own_mb:.1f} MB; "
        f"with the documented python:3.12-slim ({DOCUMENTED_BASE_MB:.0f} MB): {total:.1f} MB "
        f"(limit {SIZE_LIMIT_MB:.0f} MB)"
    )
    assert total < SIZE_LIMIT_MB


def test_image_metadata(image: BuiltImage) -> None:
    config = inspect(image.tag)["Config"]
    assert isinstance(config, dict)
    user = str(config["User"]).split(":")[0]
    assert user.isdigit(), f"USER must be a numeric UID, got {user!r}"
    assert int(user) != 0
    assert "8000/tcp" in config["ExposedPorts"]
    assert "CMD" in config["Healthcheck"]["Test"]
    labels = config["Labels"] or {}
    assert labels.get("org.opencontainers.image.title") == "taskhub"
    env = dict(item.split("=", 1) for item in config["Env"])
    assert env.get("PYTHONDONTWRITEBYTECODE") == "1"
    assert env.get("PYTHONUNBUFFERED") == "1"


def test_only_production_distributions_are_installed(image: BuiltImage) -> None:
    code = (
        "import importlib.metadata as m, json; "
        "print(json.dumps(sorted(d.metadata['Name'].lower() for d in m.distributions())))"
    )
    proc = run(["docker", "run", "--rm", "--entrypoint", "python", image.tag, "-c", code])
    installed = set(json.loads(proc.stdout))
    assert {"taskhub", "litestar", "uvicorn"} <= installed
    assert not installed & NOT_IN_IMAGE, f"in the image: {sorted(installed & NOT_IN_IMAGE)}"


def test_app_directory_holds_only_runtime_files(image: BuiltImage) -> None:
    script = (
        "cd /app && find . -mindepth 1 | sort; echo ---; "
        "find /app /opt/venv/lib/python3.12/site-packages/app "
        "/opt/venv/lib/python3.12/site-packages/domain "
        "/opt/venv/lib/python3.12/site-packages/adapters "
        "\\( -name tests -o -name .git -o -name '*.md' -o -name __pycache__ -o -name '*.pyc' \\)"
    )
    out = run(["docker", "run", "--rm", "--entrypoint", "sh", image.tag, "-c", script]).stdout
    listing, forbidden = out.split("---\n")
    top = {line.split("/")[1] for line in listing.split()}
    assert top == {"alembic.ini", "entrypoint.sh", "migrations", "data"}, top
    assert forbidden.strip() == "", f"must not be in the image:\n{forbidden}"
    assert "./migrations/env.py" in listing.split()


def test_other_commands_run_instead_of_the_server(image: BuiltImage) -> None:
    proc = run(["docker", "run", "--rm", image.tag, "taskhub", "check-config"], timeout=60)
    assert json.loads(proc.stdout)["PORT"] == 8000


def test_database_wait_is_bounded_and_says_why(image: BuiltImage) -> None:
    started = time.monotonic()
    proc = run(
        [
            "docker", "run", "--rm",
            "-e", "DATABASE_URL=postgresql+asyncpg://u:p@db.invalid:5432/taskhub",
            "-e", "DB_WAIT_TIMEOUT=2",
            image.tag,
        ],
        check=False,
        timeout=60,
    )  # fmt: skip
    assert proc.returncode != 0
    assert "db.invalid:5432 not reachable after 2 s" in proc.stderr
    assert time.monotonic() - started < 30


def test_runs_as_non_root_and_answers_health(served: Served) -> None:
    response = wait_for_http(f"{served.url}/health", timeout=90)
    report(f"docker run -> /health 200: {time.monotonic() - served.started:.1f} s")
    assert response.status_code == 200
    assert response.json() == {"status": "healthy"}
    uid = run(["docker", "exec", served.name, "id", "-u"]).stdout.strip()
    assert uid != "0"
    # The default SQLite database was migrated at start, in the one directory the user owns.
    ready = httpx.get(f"{served.url}/health/ready", timeout=5)
    assert ready.status_code == 200, ready.text


def test_healthcheck_turns_healthy(served: Served) -> None:
    deadline = time.monotonic() + 90
    status = ""
    while time.monotonic() < deadline:
        state = inspect(served.name)["State"]
        assert isinstance(state, dict)
        status = state["Health"]["Status"]
        if status == "healthy":
            break
        assert state["Running"], f"container stopped: {state}"
        time.sleep(1)
    report(f"docker run -> HEALTHCHECK healthy: {time.monotonic() - served.started:.1f} s")
    assert status == "healthy"


def test_docker_stop_ends_it_cleanly(served: Served) -> None:
    wait_for_http(f"{served.url}/health", timeout=90)
    grace = 20
    started = time.monotonic()
    run(["docker", "stop", "-t", str(grace), served.name], timeout=grace + 30)
    took = time.monotonic() - started
    state = inspect(served.name)["State"]
    assert isinstance(state, dict)
    report(f"docker stop: {took:.1f} s, exit code {state['ExitCode']}")
    assert state["ExitCode"] in (0, 143), "SIGTERM must end the server; 137 means it was killed"
    assert not state["OOMKilled"]
    assert took < grace
