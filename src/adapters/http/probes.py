"""A minimal HTTP endpoint for a process that serves no API (the standalone worker):
`GET /health/live` (200 while `alive()` says so, else 503) and `GET /metrics` (Prometheus text).
One request per connection; anything else is 404 (405 for a method other than GET or HEAD)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable

from adapters.http.metrics import render_metrics

_REQUEST_TIMEOUT_SECONDS = 5.0
_MAX_HEADER_LINES = 100
_REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}


def _answer(method: str, path: str, alive: Callable[[], bool]) -> tuple[int, bytes, str]:
    if method not in ("GET", "HEAD"):
        return 405, b"", "text/plain"
    path = path.split("?", 1)[0]
    if path == "/metrics":
        body, content_type = render_metrics()
        return 200, body, content_type
    if path == "/health/live":
        status = 200 if alive() else 503
        body = json.dumps({"status": "ok" if status == 200 else "stalled"}).encode()
        return status, body, "application/json"
    return 404, b"", "text/plain"


async def start_probe_server(host: str, port: int, alive: Callable[[], bool]) -> asyncio.Server:
    """Listen on host:port and answer the two paths; close the returned server to stop."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(_REQUEST_TIMEOUT_SECONDS):
                request_line = (await reader.readline()).decode("latin-1").split()
                for _ in range(_MAX_HEADER_LINES):
                    if (await reader.readline()) in (b"\r\n", b"\n", b""):
                        break
            if len(request_line) < 2:
                return
            method, path = request_line[0], request_line[1]
            status, body, content_type = _answer(method, path, alive)
            head = (
                f"HTTP/1.1 {status} {_REASONS[status]}\r\n"
                f"Content-Type: {content_type}\r\n"
                f"Content-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n"
            ).encode()
            writer.write(head if method == "HEAD" else head + body)
            await writer.drain()
        except (TimeoutError, ConnectionError, UnicodeError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    return await asyncio.start_server(handle, host, port)
