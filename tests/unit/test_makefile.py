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
