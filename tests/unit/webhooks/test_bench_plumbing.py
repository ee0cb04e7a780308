"""The webhook bench's plumbing: seeding, draining with the real delivery step and sender to its
local receiver, and the report (a few deliveries, no timing asserted)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.webhooks import main, measure


async def test_measure_delivers_everything_it_seeds() -> None:
    result = await measure(deliveries=25, concurrency=4, database_url="memory://")
    assert (result["deliveries"], result["left_pending"], result["database"]) == (25, 0, "memory")
    assert result["per_second"] > 0
    assert result["statements_per_delivery"] is None  # no SQL to count


def test_the_command_migrates_a_sqlite_file_and_prints_one_json_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["--deliveries", "12", "--concurrency", "3"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (result["deliveries"], result["database"]) == (12, "sqlite+aiosqlite")
    assert result["statements_per_delivery"] > 0
