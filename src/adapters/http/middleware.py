"""One pure-ASGI middleware for every HTTP request: request id, one access-log line, metrics,
`X-Content-Type-Options: nosniff`, and the RateLimit-* headers of the decision the auth guard
made (kept in the scope's state).

Kept as a single layer on purpose (it runs on every request): it validates or creates the
`X-Request-ID`, puts it in the request's log context (logcontext.py), adds it to the response,
times the request and records count/latency by route *template* (so `/v1/tasks/{id}` is one
label). The access line also carries the domain events the request published. It never reads or
logs bodies.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import msgspec

from adapters.http import logcontext
from adapters.http.logcontext import REQUEST_LOG, RequestLog
from adapters.http.metrics import HTTP_IN_FLIGHT_NOW, HTTP_LATENCY, HTTP_REQUESTS
from adapters.http.problems import PROBLEM_JSON, TYPE_BASE, Problem
from domain.events import ORIGIN, Origin

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_SANE_ID = re.compile(rb"^[A-Za-z0-9._-]{1,128}$")
_HEADER = b"x-request-id"
# Every answer: browsers must not guess another media type than the one declared.
_NOSNIFF = (b"x-content-type-options", b"nosniff")
_UNMATCHED = "<unmatched>"
_QUIET = frozenset({"/health", "/health/ready", "/metrics"})


def request_id_from(headers: list[tuple[bytes, bytes]] | Any) -> str:
    for name, value in headers:
        if name == _HEADER:
            if _SANE_ID.match(value):
                return str(value.decode("ascii"))
            break
    return new_request_id()


# A random UUID (version 4, RFC 4122 variant) as 32 hex digits, as uuid.uuid4().hex writes it,
# without a UUID object and a getrandom() call per request: the random bytes come from the OS
# 4 KiB at a time (a forked child starts with none of its parent's).
_UUID4_CLEAR = ~((0xC000 << 48) | (0xF000 << 64))
_UUID4_SET = (0x8000 << 48) | (4 << 76)
_RANDOM_CHUNK = 4096


class _RandomBytes:
    def __init__(self) -> None:
        self.buffer = b""
        self.at = 0

    def take16(self) -> bytes:
        at = self.at
        if at + 16 > len(self.buffer):
            self.buffer, at = os.urandom(_RANDOM_CHUNK), 0
        self.at = at + 16
        return self.buffer[at : at + 16]

    def forget(self) -> None:
        self.buffer, self.at = b"", 0


_random = _RandomBytes()
os.register_at_fork(after_in_child=_random.forget)


def new_request_id() -> str:
    return "%032x" % ((int.from_bytes(_random.take16()) & _UUID4_CLEAR) | _UUID4_SET)


def cut_off_answer(request_id: str) -> tuple[Message, Message]:
    """A retryable 503 problem, for a request the server cancels before it answered."""
    body = msgspec.json.encode(
        Problem(
            type=TYPE_BASE + "unavailable",
            title="Service Unavailable",
            status=503,
            detail="The server stopped before it could answer; retry the request.",
            request_id=request_id,
        )
    )
    start = {
        "type": "http.response.start",
        "status": 503,
        "headers": [
            (b"content-type", PROBLEM_JSON.encode()),
            (b"content-length", str(len(body)).encode()),
            (b"retry-after", b"1"),
            (b"connection", b"close"),
        ],
    }
    return start, {"type": "http.response.body", "body": body}


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        # Labelled metric children, looked up once per label set rather than on every request.
        self._counters: dict[tuple[str, str, int], Any] = {}
        self._latencies: dict[tuple[str, str], Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_from(scope["headers"])
        context = RequestLog(request_id)
        token = REQUEST_LOG.set(context)
        origin = ORIGIN.set(Origin("http", request_id))  # what events of this request record
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        header_value = request_id.encode("ascii")
        status = 500
        started = time.perf_counter()

        answered = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, answered
            if message["type"] == "http.response.start":
                status = message["status"]
                answered = True
                headers = list(message.get("headers", ()))
                headers.append((_HEADER, header_value))
                headers.append(_NOSNIFF)
                decision = state.get("rate_limit")
                if decision is not None:
                    headers.extend(
                        (
                            (b"ratelimit-limit", str(decision.limit).encode()),
                            (b"ratelimit-remaining", str(decision.remaining).encode()),
                            (b"ratelimit-reset", str(decision.reset_after).encode()),
                        )
                    )
                message["headers"] = headers
            await send(message)

        HTTP_IN_FLIGHT_NOW.inc()
        try:
            await self.app(scope, receive, send_with_id)
        except asyncio.CancelledError:
            # The server cancels a request still running when its shutdown grace period ends.
            # Unanswered, it would get uvicorn's plain 500; it was cut off, not wrong, so it
            # gets a 503 the client may retry (on another replica). The task ends here.
            if answered:
                raise
            current = asyncio.current_task()
            if current is not None:
                current.uncancel()
            for message in cut_off_answer(request_id):
                await send_with_id(message)
        finally:
            HTTP_IN_FLIGHT_NOW.dec()
            elapsed = time.perf_counter() - started
            route = scope.get("path_template") or _UNMATCHED
            method = scope["method"]
            self._count(method, route, status, elapsed)
            context.open = False
            try:
                if route not in _QUIET or status >= 500:
                    logcontext.write_access_line(
                        context,
                        method,
                        route,
                        scope["path"],
                        status,
                        int(elapsed * 100_000 + 0.5) / 100,  # round(ms, 2), quicker
                        (scope.get("client") or ("-",))[0],
                    )
            finally:
                REQUEST_LOG.reset(token)
                ORIGIN.reset(origin)

    def _count(self, method: str, route: str, status: int, elapsed: float) -> None:
        counter = self._counters.get((method, route, status))
        if counter is None:
            counter = self._counters[(method, route, status)] = HTTP_REQUESTS.labels(
                method, route, str(status)
            )
        counter.inc()
        latency = self._latencies.get((method, route))
        if latency is None:
            latency = self._latencies[(method, route)] = HTTP_LATENCY.labels(method, route)
        latency.observe(elapsed)
