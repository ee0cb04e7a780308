"""Who is calling, may they, and how often: the guards in front of every /v1 handler.

A guard (not a middleware: PITFALLS 4) resolves the Principal from `Authorization: Bearer`,
counts the request against the rate limit (per principal; per client address for anonymous or
failed calls), then checks the handler's scope. 401 carries `WWW-Authenticate: Bearer`; 429
carries `Retry-After`. The decision's RateLimit-* headers are added to the response by the
request middleware, whatever the outcome.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from adapters.http.logcontext import bind_request_log
from domain.auth import Principal, Scope
from domain.errors import RateLimited, Unauthenticated
from domain.ports import RateLimitDecision, RateLimiter, RateLimitPolicy

log = structlog.get_logger("taskhub.auth")

Authenticate = Callable[[str, str | None], Awaitable[Principal]]
# The fast path: principal and rate-limit decision together (one round trip), None on a miss.
Admit = Callable[[str, str | None], Awaitable[tuple[Principal, RateLimitDecision] | None]]

SCOPE_OPT = "scope"
STATE_PRINCIPAL = "principal"
STATE_RATE_LIMIT = "rate_limit"


@dataclass(frozen=True, slots=True)
class HttpSecurity:
    """What the guards need, handed over by the composition root (app.state.security)."""

    authenticate: Authenticate
    rate_limiter: RateLimiter
    default_policy: RateLimitPolicy
    admit: Admit | None = None


def client_address(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    """The caller's address (uvicorn has already applied trusted X-Forwarded-For)."""
    client = connection.scope.get("client")
    return str(client[0]) if client else "unknown"


def raw_header(connection: ASGIConnection[Any, Any, Any, Any], name: bytes) -> str | None:
    """The first value of header `name` (lower case), read from the ASGI scope as it is:
    cheaper than building Litestar's Headers for the one or two this guard needs."""
    for key, value in connection.scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def bearer_token(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    header = raw_header(connection, b"authorization")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token


async def count_request(
    connection: ASGIConnection[Any, Any, Any, Any], security: HttpSecurity, subject: str
) -> None:
    """Count one request (the composition root makes the limiter fail open when it is down)."""
    policy = security.default_policy
    decision: RateLimitDecision = await security.rate_limiter.hit(policy, subject)
    apply_decision(connection, policy, decision)


def apply_decision(
    connection: ASGIConnection[Any, Any, Any, Any],
    policy: RateLimitPolicy,
    decision: RateLimitDecision,
) -> None:
    """Keep the decision for the RateLimit-* headers; refuse with 429 when over the limit."""
    connection.scope["state"][STATE_RATE_LIMIT] = decision
    if decision.allowed:
        return
    raise RateLimited(
        f"Rate limit of {policy.limit} requests per {policy.window_seconds} s exceeded.",
        retry_after=decision.retry_after,
    )


async def anonymous_guard(
    connection: ASGIConnection[Any, Any, Any, Any], _handler: BaseRouteHandler
) -> None:
    """Endpoints open to anyone (sign-up, log-in): limited per client address."""
    security: HttpSecurity = connection.app.state.security
    await count_request(connection, security, f"addr:{client_address(connection)}")


async def principal_guard(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    """Authenticate, rate-limit and check the handler's `opt["scope"]` (if any)."""
    security: HttpSecurity = connection.app.state.security
    token = bearer_token(connection)
    if token is None:
        await count_request(connection, security, f"addr:{client_address(connection)}")
        log.info("auth denied", reason="missing bearer token")
        raise Unauthenticated("A bearer token is required (Authorization: Bearer <token>).")
    acting_user = raw_header(connection, b"x-acting-user")
    try:
        admitted = await security.admit(token, acting_user) if security.admit else None
        if admitted is None:
            principal = await security.authenticate(token, acting_user)
    except Unauthenticated:
        await count_request(connection, security, f"addr:{client_address(connection)}")
        log.info("auth denied", reason="invalid credentials")
        raise
    if admitted is not None:
        principal, decision = admitted
        _bind(connection, principal)
        apply_decision(connection, security.default_policy, decision)
    else:
        _bind(connection, principal)
        await count_request(connection, security, principal.rate_limit_subject)
    required: Scope | None = handler.opt.get(SCOPE_OPT)
    if required is not None:
        principal.require(required)


def _bind(connection: ASGIConnection[Any, Any, Any, Any], principal: Principal) -> None:
    bind_request_log(
        principal=f"{principal.kind.value}:{principal.credential_id}",
        user_id=principal.user_id,
        actor=principal.actor,
    )
    connection.scope["state"][STATE_PRINCIPAL] = principal


def current_principal(request: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    """Dependency: the principal the guard resolved."""
    principal: Principal = request.scope["state"][STATE_PRINCIPAL]
    return principal
