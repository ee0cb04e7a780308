"""The Makefile: `make help` prints the targets and runs nothing else (no uv bootstrap, no
Python lookup); the targets that need uv still find it."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """The Makefile beside stand-ins for the two scripts it calls, which leave a mark when run."""
    if shutil.which("make") is None:
        pytest.skip("no `make` on PATH")
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    for name in ("pyproject.toml", "uv.lock"):  # what .venv/.synced depends on
        (tmp_path / name).write_text("")
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    for name, prints in (("bootstrap.sh", "/stand-in/uv"), ("find-python.sh", "/stand-in/py")):
        script = scripts / name
        mark = f'echo {name} >> "$(dirname "$0")/../ran"'
        script.write_text(f"#!/bin/sh\n{mark}\necho {prints}\n")
        script.chmod(0o755)
    return tmp_path


def ran(checkout: Path) -> list[str]:
    marks = checkout / "ran"
    return marks.read_text().split() if marks.exists() else []


@pytest.mark.parametrize(
    "environment",
    [{}, {"UV": "/elsewhere/uv", "PYTHON_312": "/elsewhere/python3.12"}],  # as under `uv run`
)
def test_make_help_lists_the_targets_and_bootstraps_nothing(
    checkout: Path, environment: dict[str, str]
) -> None:
    env = {k: v for k, v in os.environ.items() if k not in {"UV", "PYTHON_312"}}
    proc = subprocess.run(
        ["make", "help"],
        cwd=checkout,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
        env={**env, **environment},
    )
    assert ran(checkout) == []
    assert proc.stderr == ""
    targets = [line.split()[0] for line in proc.stdout.splitlines()]
    assert {"help", "run", "test", "lint", "venv"} <= set(targets)


def test_a_target_that_needs_uv_still_finds_it(checkout: Path) -> None:
    proc = subprocess.run(
        ["make", "-n", "-B", "migrate"],
        cwd=checkout,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    assert '/stand-in/uv sync --frozen --python "/stand-in/py"' in proc.stdout
    assert "/stand-in/uv run --frozen --no-sync taskhub migrate" in proc.stdout
    assert ran(checkout).count("bootstrap.sh") == 1  # looked up once, not once per use


def _lint_recipe() -> list[str]:
    lines = (ROOT / "Makefile").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("lint:"))
    recipe = []
    for line in lines[start + 1 :]:
        if not line.startswith("\t"):
            break
        recipe.append(line.strip())
    return recipe


def test_make_lint_runs_every_gate() -> None:
    """ruff, ruff format, strict mypy on src, mypy on tests, the layer contracts, shellcheck."""
    recipe = " ; ".join(_lint_recipe())
    for gate in (
        "ruff check src tests migrations bench",
        "ruff format --check src tests migrations bench",
        "mypy ;",
        "mypy tests",
        "lint-imports",
        "shellcheck $(SHELL_SCRIPTS)",
    ):
        assert gate in recipe + " ;", gate
    scripts = (ROOT / "Makefile").read_text().split("SHELL_SCRIPTS := ", 1)[1].splitlines()[0]
    assert scripts.split() == ["scripts/*.sh", ".ci/run", "entrypoint.sh"]


def test_the_pre_commit_hook_is_make_lint() -> None:
    """The hook runs `make lint` itself, on every commit, so it cannot drift from CI's gates."""
    import yaml

    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    hooks = [hook for repo in config["repos"] for hook in repo["hooks"]]
    assert [(h["entry"], h["pass_filenames"], h["always_run"]) for h in hooks] == [
        ("make lint", False, True)
    ]
