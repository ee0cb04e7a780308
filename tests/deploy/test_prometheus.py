"""deploy/prometheus/alerts.yaml: promtool accepts the rules and their unit tests pass, and
every Taskhub metric they name is one the service exposes."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from litestar.testing import TestClient

from app.factory import create_app
from app.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "alerts.yaml"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "alerts.test.yaml"


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        message = "promtool is not installed (Debian: apt-get install prometheus)"
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(message + " (CI=true: a missing tool is a failure)")
        pytest.skip(message)
    return found


def test_promtool_accepts_the_rules() -> None:
    done = subprocess.run(
        [promtool(), "check", "rules", str(RULES)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_rules_unit_tests_pass() -> None:
    done = subprocess.run(
        [promtool(), "test", "rules", str(RULE_TESTS)],
        capture_output=True,
        text=True,
        check=False,
        cwd=RULE_TESTS.parent,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_promtool_tests_can_fail(tmp_path: Path) -> None:
    """A rule whose threshold moved fails its unit test."""
    (tmp_path / "alerts.yaml").write_text(RULES.read_text().replace("> 0.02", "> 0.5", 1))
    (tmp_path / "alerts.test.yaml").write_text(RULE_TESTS.read_text())
    done = subprocess.run(
        [promtool(), "test", "rules", "alerts.test.yaml"],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode != 0


def test_every_taskhub_metric_in_the_rules_is_exposed() -> None:
    named = {
        re.sub(r"_(bucket|count|sum)$", "", m)
        for m in re.findall(r"\btaskhub_[a-z_]+", RULES.read_text())
    }
    settings = load_settings(
        environ={"DATABASE_URL": "postgresql+asyncpg://x@127.0.0.1:1/x", "LOG_FORMAT": "json"},
        dotenv_path=None,
    )
    with TestClient(create_app(settings)) as client:
        exposed = client.get("/metrics").text
    families = set(re.findall(r"^# TYPE (\w+) ", exposed, re.M))
    # Counters are exposed as <name>_total with a family named <name>.
    families |= {f + "_total" for f in families}
    assert named
    assert named <= families, named - families
