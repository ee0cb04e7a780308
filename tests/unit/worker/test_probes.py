"""The standalone worker's HTTP endpoint: liveness that follows the loop, and metrics."""

from __future__ import annotations

import asyncio

import httpx

from adapters.http.probes import start_probe_server


async def test_liveness_and_metrics_answer_and_other_paths_do_not() -> None:
    alive = [True]
    server = await start_probe_server("127.0.0.1", 0, lambda: alive[0])
    port = server.sockets[0].getsockname()[1]
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            live = await client.get("/health/live")
            assert (live.status_code, live.json()) == (200, {"status": "ok"})
            alive[0] = False
            stalled = await client.get("/health/live")
            assert (stalled.status_code, stalled.json()) == (503, {"status": "stalled"})
            metrics = await client.get("/metrics")
            assert metrics.status_code == 200
            assert metrics.headers["content-type"].startswith("text/plain")
            assert "taskhub_worker_job_runs_total" in metrics.text
            assert (await client.get("/")).status_code == 404
            assert (await client.post("/metrics")).status_code == 405
            head = await client.head("/health/live")
            assert (head.status_code, head.content) == (503, b"")
    finally:
        server.close()
        await server.wait_closed()


async def test_a_request_without_a_request_line_is_dropped() -> None:
    server = await start_probe_server("127.0.0.1", 0, lambda: True)
    port = server.sockets[0].getsockname()[1]
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"\r\n\r\n")
        await writer.drain()
        assert await asyncio.wait_for(reader.read(), timeout=2) == b""
        writer.close()
    finally:
        server.close()
        await server.wait_closed()
