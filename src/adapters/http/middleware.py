"""One pure-ASGI middleware for every HTTP request: request id, one access-log line, metrics,
and the RateLimit-* headers of the decision the auth guard made (kept in the scope's state).

Kept as a single layer on purpose (it runs on every request): it validates or creates the
`X-Request-ID`, binds it into structlog's context, adds it to the response, times the request and
records count/latency by route *template* (so `/v1/tasks/{id}` is one label). It never reads or
logs bodies.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import structlog
from structlog.contextvars import bind_contextvars, clear_contextvars, get_contextvars

from adapters.http.metrics import HTTP_IN_FLIGHT, HTTP_LATENCY, HTTP_REQUESTS

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_SANE_ID = re.compile(rb"^[A-Za-z0-9._-]{1,128}$")
_HEADER = b"x-request-id"
_UNMATCHED = "<unmatched>"
_QUIET = frozenset({"/health", "/health/ready", "/metrics"})

access_log = structlog.get_logger("taskhub.access")


def request_id_from(headers: list[tuple[bytes, bytes]] | Any) -> str:
    for name, value in headers:
        if name == _HEADER:
            if _SANE_ID.match(value):
                return str(value.decode("ascii"))
            break
    return uuid.uuid4().hex


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_from(scope["headers"])
        clear_contextvars()
        bind_contextvars(request_id=request_id)
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        header_value = request_id.encode("ascii")
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", ()))
                headers.append((_HEADER, header_value))
                decision = state.get("rate_limit")
                if decision is not None:
                    headers += [
                        (b"ratelimit-limit", str(decision.limit).encode()),
                        (b"ratelimit-remaining", str(decision.remaining).encode()),
                        (b"ratelimit-reset", str(decision.reset_after).encode()),
                    ]
                message["headers"] = headers
            await send(message)

        HTTP_IN_FLIGHT.inc()
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            HTTP_IN_FLIGHT.dec()
            elapsed = time.perf_counter() - started
            route = scope.get("path_template") or _UNMATCHED
            method = scope["method"]
            HTTP_REQUESTS.labels(method, route, str(status)).inc()
            HTTP_LATENCY.labels(method, route).observe(elapsed)
            if route not in _QUIET or status >= 500:
                context = get_contextvars()
                access_log.info(
                    "request",
                    method=method,
                    route=route,
                    path=scope["path"],
                    status=status,
                    duration_ms=round(elapsed * 1000, 2),
                    client=(scope.get("client") or ("-",))[0],
                    principal=context.get("principal"),
                )
            clear_contextvars()
