"""Admission in front of the MCP endpoint: who is calling, and may they now.

The same step as the HTTP guard, through the Admission port: the principal from
`Authorization: Bearer` (with `X-Acting-User` for the service token) and the rate-limit
decision, per user, or per client address for calls without a valid credential. A call over the
limit is answered 429 with `Retry-After` here; the decision goes into the scope's state, where
the request middleware turns it into RateLimit-* headers. A call without a valid credential goes
on to the SDK's bearer check, which answers 401 with `WWW-Authenticate`. The SDK's token
verifier (`AdmittedTokens`) then only confirms what this gate admitted: the credential is looked
up once per request.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from mcp.server.auth.provider import AccessToken

from domain.auth import Principal
from domain.errors import Unauthenticated
from domain.events import ORIGIN, Origin
from domain.ports import RateLimitDecision
from domain.ports.admission import Admission

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# The scope-state key the request middleware reads the rate-limit decision from.
STATE_RATE_LIMIT = "rate_limit"
VIA = "mcp"


@dataclass(frozen=True, slots=True)
class Admitted:
    token: str
    principal: Principal


# The call admitted by the gate, for the token verifier and the tools (the SDK runs them in the
# request's context).
ADMITTED: ContextVar[Admitted | None] = ContextVar("taskhub_mcp_admitted", default=None)


def current_principal() -> Principal:
    """The principal of the MCP call being served."""
    admitted = ADMITTED.get()
    if admitted is None:  # the SDK's bearer check runs first; this is a wiring error
        raise Unauthenticated("A bearer token is required (Authorization: Bearer <token>).")
    return admitted.principal


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _bearer(scope: Scope) -> str | None:
    header = _header(scope, b"authorization")
    if not header:
        return None
    kind, _, token = header.partition(" ")
    token = token.strip()
    return token if kind.lower() == "bearer" and token else None


class AdmittedTokens:
    """The SDK's TokenVerifier over our bearer authentication: the principal the gate admitted
    for this very token, as the SDK's AccessToken (its scopes are the credential's)."""

    async def verify_token(self, token: str) -> AccessToken | None:
        admitted = ADMITTED.get()
        if admitted is None or admitted.token != token:
            return None
        principal = admitted.principal
        return AccessToken(
            token=token,
            client_id=principal.credential_id,
            subject=principal.user_id,
            scopes=sorted(principal.scopes),
        )


class McpGate:
    def __init__(self, app: ASGIApp, admission: Admission, bind_log: Callable[..., None]) -> None:
        self.app, self._admission, self._bind_log = app, admission, bind_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["method"] != "POST":
            # Stateless: no server-initiated stream (GET) and no session to end (DELETE).
            await _answer(send, 405, b"Only POST is served here.", [(b"allow", b"POST")])
            return
        admission = self._admission
        token = _bearer(scope)
        principal: Principal | None = None
        decision: RateLimitDecision
        if token is not None:
            try:
                principal, decision = await admission.admit(token, _header(scope, b"x-acting-user"))
            except Unauthenticated:
                principal = None
        if principal is None:
            client = scope.get("client")
            decision = await admission.admit_anonymous(str(client[0]) if client else "unknown")
        scope.setdefault("state", {})[STATE_RATE_LIMIT] = decision
        if principal is not None:
            self._bind_log(
                principal=f"{principal.kind.value}:{principal.credential_id}",
                user_id=principal.user_id,
                actor=principal.actor,
                via=VIA,
            )
        if not decision.allowed:
            policy = admission.policy
            await _too_many(
                send,
                f"Rate limit of {policy.limit} requests per {policy.window_seconds} s exceeded.",
                decision.retry_after,
            )
            return
        if principal is None or token is None:
            await self.app(scope, receive, send)
            return
        reset = ADMITTED.set(Admitted(token, principal))
        # Events of the tool calls record that they came through MCP, with the request's id.
        origin = ORIGIN.set(Origin("mcp", scope.get("state", {}).get("request_id")))
        try:
            await self.app(scope, receive, send)
        finally:
            ORIGIN.reset(origin)
            ADMITTED.reset(reset)


async def _answer(
    send: Send,
    status: int,
    body: bytes,
    headers: list[tuple[bytes, bytes]],
    media: bytes = b"text/plain; charset=utf-8",
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", media),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _too_many(send: Send, detail: str, retry_after: int) -> None:
    body = json.dumps(
        {
            "type": "https://taskhub.dev/problems/rate-limited",
            "title": "Too Many Requests",
            "status": 429,
            "detail": detail,
        }
    ).encode()
    await _answer(
        send,
        429,
        body,
        [(b"retry-after", str(max(1, retry_after)).encode())],
        b"application/problem+json",
    )
