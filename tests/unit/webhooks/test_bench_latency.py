"""The webhook latency bench's pure parts (pacing, percentiles, matching deliveries to writes,
reading a signed delivery) and the local receiver it and `BENCH_WEBHOOKS` use."""

from __future__ import annotations

import asyncio
import base64
import json
from datetime import UTC, datetime

import httpx
import pytest

from bench.receiver import Arrival, ThreadedReceiver, local_receiver
from bench.webhook_latency import (
    Delivered,
    Write,
    error_count,
    percentile,
    read_delivery,
    report,
    send_offsets,
)
from domain.webhooks import delivery_headers, payload

SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()


def test_send_offsets_are_evenly_paced_over_the_duration() -> None:
    offsets = send_offsets(100, 2)
    assert len(offsets) == 200
    assert offsets[0] == 0
    assert offsets[1] == pytest.approx(0.01)
    assert offsets[-1] == pytest.approx(1.99)
    assert send_offsets(3, 1) == pytest.approx([0, 1 / 3, 2 / 3])
    with pytest.raises(ValueError, match="positive"):
        send_offsets(0, 10)


def test_percentile_is_nearest_rank() -> None:
    values = [float(n) for n in range(100, 0, -1)]  # 100 .. 1, unsorted
    assert percentile(values, 50) == 50
    assert percentile(values, 99) == 99
    assert percentile(values, 100) == 100
    assert percentile([7.0], 99) == 7
    assert percentile([1.0, 2.0, 3.0], 50) == 2
    assert percentile([], 50) is None
    with pytest.raises(ValueError, match="q must be"):
        percentile(values, 0)


def write(task_id: str | None, answered_at: float, status: int = 201) -> Write:
    return Write(status, task_id, answered_at, late_s=0.002, seconds=0.01)


def delivered(
    task_id: str,
    occurred: float,
    arrived: float,
    delivery: str,
    event_type: str = "task.created",
    signed: bool = True,
) -> Delivered:
    return Delivered(task_id, event_type, occurred, arrived, delivery, signed)


def test_report_matches_each_created_task_to_its_first_delivery() -> None:
    writes = [write("a", 10.1), write("b", 11.1), write(None, 12.0, status=503), write("c", 12.1)]
    got = [
        delivered("a", 10.0, 10.5, "d1"),
        delivered("b", 11.0, 13.0, "d2"),
        delivered("b", 11.0, 14.0, "d2"),  # the same delivery again (at least once)
        delivered("x", 11.0, 12.0, "d3"),  # a task this run did not create
        delivered("a", 10.0, 11.0, "d4", event_type="task.updated"),
        delivered("a", 10.0, 10.7, "d5", signed=False),
    ]
    result = report(writes, got)
    assert result["changes"] == 4
    assert result["failed_writes"] == 1
    assert (result["delivered"], result["missing"]) == (2, 1)  # c never came
    assert (result["repeated"], result["unexpected"], result["bad_signatures"]) == (1, 2, 1)
    assert result["from_occurred_at"]["p50_ms"] == 500.0  # a: 0.5 s, b: 2.0 s
    assert result["from_occurred_at"]["max_ms"] == 2000.0
    assert result["from_write_answer"]["p99_ms"] == pytest.approx(1900.0)
    assert error_count(result) == 1 + 1 + 2 + 1


def test_a_delivery_signed_as_the_worker_signs_reads_back() -> None:
    occurred = datetime(2026, 12, 3, 10, 0, 0, 123456, tzinfo=UTC)
    data = {"id": "e1", "type": "task.created", "resource": {"type": "task", "id": "t1"}}
    body = payload("task.created", occurred, data)
    stamp = int(datetime.now(UTC).timestamp())
    headers = delivery_headers([SECRET], "m1", stamp, body)
    got = read_delivery(Arrival(123.0, headers, body.encode()), SECRET)
    assert got == Delivered("t1", "task.created", occurred.timestamp(), 123.0, "m1", True)
    tampered = read_delivery(Arrival(123.0, headers, body.encode() + b" "), SECRET)
    assert tampered.signed is False


async def test_the_receiver_answers_204_to_each_request_and_keeps_them() -> None:
    async with local_receiver(keep=True) as receiver, httpx.AsyncClient() as client:
        for n in range(3):
            answer = await client.post(receiver.url, content=json.dumps({"n": n}))
            assert answer.status_code == 204
        assert receiver.count == 3
        assert [json.loads(a.body)["n"] for a in receiver.arrivals] == [0, 1, 2]
        assert receiver.arrivals[0].headers["content-length"] == "8"


def test_the_threaded_receiver_counts_for_synchronous_callers() -> None:
    with ThreadedReceiver() as receiver:
        for _ in range(2):
            assert httpx.post(receiver.url, content=b"{}").status_code == 204
        assert receiver.count == 2


async def test_a_receiver_without_keep_only_counts() -> None:
    async with local_receiver() as receiver:
        async with httpx.AsyncClient() as client:
            await client.post(receiver.url, content=b"{}")
        await asyncio.sleep(0)
        assert (receiver.count, receiver.arrivals) == (1, [])
