"""The stream bench end to end at a low rate: two real replicas on PostgreSQL and Redis, every
successful write's event reaches every stream once and is matched to its write (no timing
asserted: the figures belong to the bench)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import bench.stream
from tests.integration.backends import RedisTarget


def test_every_write_reaches_every_stream_on_both_replicas(
    postgres_url: str,
    redis_target: RedisTarget,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(bench.stream, "RESULTS", tmp_path)
    argv = ["--replicas", "2", "--workers", "1", "--streams-per-replica", "1"]
    argv += ["--rate", "20", "--warmup", "1", "--duration", "2", "--grace", "20"]
    argv += ["--database-url", postgres_url, "--redis-url", redis_target.url]
    argv += ["--redis-prefix", f"{redis_target.key_prefix}stream-bench-"]
    assert bench.stream.main(argv) == 0  # 1 would be a failed write or a missing event
    summary = json.loads((tmp_path / "stream-latest.json").read_text())
    assert summary["writes"]["sent"] == summary["writes"]["ok"] == 60
    assert summary["writes"]["statuses"] == {"201": 30, "200": 30}
    assert [
        (s["replica"], s["received"], s["missing"], s["duplicates"]) for s in summary["streams"]
    ] == [
        (0, 60, 0, 0),
        (1, 60, 0, 0),
    ]
    assert summary["all"]["events"] == 2 * 40  # the warm-up second's writes are not timed
    assert summary["other_replica"]["p50_ms"] is not None
