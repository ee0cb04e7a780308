"""The stream bench's pure parts: SSE parsing of a byte stream cut anywhere, percentiles, the
write schedule and mix, matching events to writes, the summary's counts and bounds, and its raw
HTTP/1.1 writer against a local server (no timing asserted)."""

from __future__ import annotations

import asyncio

import pytest

from bench.stream import (
    Connections,
    Received,
    SseEvent,
    SseParser,
    StreamLog,
    Write,
    due_offset,
    is_update,
    marker_of,
    percentile,
    render,
    response_head,
    summarise,
    wall_time,
)

STREAM = (
    b": stream of changes; resume with Last-Event-ID\n\n"
    b'id: c1\nevent: task.created\ndata: {"a": 1}\n\n'
    b": keep-alive\n\n"
    b'id: c2\r\nevent: task.updated\r\ndata: {"b": 2}\r\n\r\n'
)
EXPECTED = [
    SseEvent("c1", "task.created", '{"a": 1}'),
    SseEvent("c2", "task.updated", '{"b": 2}'),
]


def test_sse_events_come_out_whole_however_the_bytes_are_cut() -> None:
    assert SseParser().feed(STREAM) == EXPECTED
    for size in (1, 2, 3, 7, 13):
        parser = SseParser()
        found = []
        for start in range(0, len(STREAM), size):
            found += parser.feed(STREAM[start : start + size])
        assert found == EXPECTED, size


def test_an_event_is_not_given_before_its_blank_line_and_data_lines_join() -> None:
    parser = SseParser()
    assert parser.feed(b"id: 9\nevent: x\ndata: one\ndata: two\n") == []
    assert parser.feed(b"\n") == [SseEvent("9", "x", "one\ntwo")]
    assert parser.feed(b"data:no space\n\n") == [SseEvent("9", "message", "no space")]


def test_percentile_is_nearest_rank() -> None:
    values = [float(n) for n in range(100, 0, -1)]  # 1..100, unsorted
    assert percentile(values, 50) == 50
    assert percentile(values, 99) == 99
    assert percentile(values, 100) == 100
    assert percentile([3.0], 99) == 3.0
    assert percentile([1.0, 2.0], 50) == 1.0
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)


def test_writes_are_due_at_a_steady_rate() -> None:
    assert [due_offset(n, 200) for n in (0, 1, 200, 399)] == [0.0, 0.005, 1.0, 1.995]


@pytest.mark.parametrize("share", [0.0, 0.25, 0.5, 1.0])
def test_updates_are_spread_evenly_at_their_share(share: float) -> None:
    kinds = [is_update(n, share) for n in range(400)]
    assert sum(kinds) == 400 * share
    for start in range(0, 400, 4):  # every run of 4 writes holds its share, give or take one
        assert abs(sum(kinds[start : start + 4]) - 4 * share) <= 1


def test_only_titles_of_this_run_name_a_write() -> None:
    assert marker_of("sbab12 17", "sbab12") == 17
    assert marker_of("sbab12 x", "sbab12") is None
    assert marker_of("sbff00 17", "sbab12") is None
    assert marker_of("target 3", "sbab12") is None


def test_event_times_read_as_epoch_seconds() -> None:
    assert wall_time("1970-01-01T00:00:01.5Z") == 1.5


def _write(index: int, replica: int, status: int = 201) -> Write:
    return Write(index, "create", replica, 100.0, 100.0, 100.0 + 0.02, status)


def test_the_summary_counts_missing_and_duplicate_events_and_bounds_the_latency() -> None:
    writes = [_write(0, 0), _write(1, 1), _write(2, 0), _write(3, 1, status=0)]

    def got(marker: int, lag: float) -> Received:
        return Received(marker, "task.created", 100.01, 100.01 + lag)

    streams = [
        # write 0 is warm-up (not timed); write 2 twice; write 3 failed, its event is ignored
        StreamLog(0, 0, 200, "", [got(0, 9.0), got(1, 0.1), got(2, 0.2), got(2, 0.3), got(3, 1)]),
        StreamLog(1, 1, 200, "", [got(1, 0.05)]),  # writes 0 and 2 never came
    ]
    summary = summarise(writes, streams, warmup_writes=1)
    first, second = summary["streams"]
    counts = ("written", "received", "missing", "duplicates")
    assert [first[k] for k in counts] == [3, 3, 0, 1]
    assert (second["received"], second["missing"]) == (1, 2)
    assert (first["p50_ms"], first["max_ms"]) == (100.0, 200.0)
    # lower bound: receive - answer (answer at 100.02, events occurred at 100.01)
    assert first["lower_bound"]["max_ms"] == pytest.approx(190.0)
    assert summary["all"]["missing"] == 2
    assert summary["all"]["events"] == 3
    assert summary["writes"]["failed"] == 1
    assert summary["writes"]["statuses"] == {"201": 3, "0": 1}
    # write 1 went to replica 1: stream 0 got it from the other replica (100 ms), stream 1 from
    # its own (50 ms); write 2 went to replica 0, as stream 0 (200 ms)
    assert [summary["same_replica"][k] for k in ("p50_ms", "max_ms")] == [50.0, 200.0]
    assert summary["other_replica"]["max_ms"] == 100.0
    assert summary["goal_met"]  # p99 200 ms <= 250


def test_the_goal_is_missed_above_the_line_and_the_table_says_so() -> None:
    writes = [_write(0, 0)]
    streams = [StreamLog(0, 0, 200, "", [Received(0, "task.created", 100.0, 100.3)])]
    summary = summarise(writes, streams, warmup_writes=0)
    assert not summary["goal_met"]
    summary["config"] = {
        "replicas": 2,
        "workers": 2,
        "streams_per_replica": 1,
        "rate": 200.0,
        "duration": 30.0,
        "warmup": 3.0,
        "update_share": 0.5,
    }
    summary["notes"] = ["a note"]
    table = render(summary)
    assert "**MISSED**" in table
    assert "| **all** |" in table
    assert "Note: a note" in table


def test_a_response_head_gives_status_length_and_keep_alive() -> None:
    head = b"HTTP/1.1 201 Created\r\ncontent-length: 12\r\ncontent-type: x\r\n\r\n"
    assert response_head(head) == (201, 12, True)
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    assert response_head(chunked) == (200, None, False)


async def test_the_writer_reuses_a_kept_alive_connection_and_reads_chunked_bodies() -> None:
    seen: list[bytes] = []
    connections = 0

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                break
            length = next(
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length")
            )
            seen.append(head.split(b"\r\n")[0] + b" " + await reader.readexactly(length))
            if len(seen) == 1:
                writer.write(b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\n{}")
            else:
                writer.write(
                    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"
                )
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    pool = Connections("127.0.0.1", port, "thk_x")
    try:
        assert await pool.request("POST", "/v1/tasks", b'{"title":"a"}') == 201
        assert await pool.request("PATCH", "/v1/tasks/1", b'{"title":"b"}') == 200
        assert await pool.request("PATCH", "/v1/tasks/1", b'{"title":"c"}') == 200
    finally:
        pool.close()
        server.close()
    assert connections == 1
    assert seen == [
        b'POST /v1/tasks HTTP/1.1 {"title":"a"}',
        b'PATCH /v1/tasks/1 HTTP/1.1 {"title":"b"}',
        b'PATCH /v1/tasks/1 HTTP/1.1 {"title":"c"}',
    ]


async def test_the_writer_does_not_reuse_a_connection_the_server_closed() -> None:
    connections = 0

    async def answer_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await reader.readuntil(b"\r\n\r\n")
        await reader.readexactly(2)
        writer.write(b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()  # as a server does at its keep-alive timeout, without saying so

    server = await asyncio.start_server(answer_once, "127.0.0.1", 0)
    pool = Connections("127.0.0.1", server.sockets[0].getsockname()[1], "thk_x")
    try:
        assert await pool.request("POST", "/v1/tasks", b"{}") == 201
        await asyncio.sleep(0.1)  # the close reaches the client
        assert await pool.request("POST", "/v1/tasks", b"{}") == 201
    finally:
        pool.close()
        server.close()
    assert connections == 2
