"""Who is calling, may they, and how often: the guards in front of every /v1 handler.

A guard (not a middleware, so its 401, 403 and 429 are answered, logged and counted like any
handler error) admits the request through the Admission port: the Principal from
`Authorization: Bearer` and the rate-limit decision (per user; per client address for anonymous
or failed calls), then checks the handler's scope. 401 carries `WWW-Authenticate: Bearer`; 429
carries `Retry-After`. The decision's RateLimit-* headers are added to the response by the
request middleware, whatever the outcome.
"""

from __future__ import annotations

from typing import Any

import structlog
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from adapters.http.logcontext import bind_request_log
from adapters.http.services import services
from domain.auth import Principal, Scope
from domain.errors import RateLimited, Unauthenticated
from domain.ports import RateLimitDecision, RateLimitPolicy
from domain.ports.admission import Admission

log = structlog.get_logger("taskhub.auth")

SCOPE_OPT = "scope"
STATE_PRINCIPAL = "principal"
STATE_RATE_LIMIT = "rate_limit"


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
    await _count_anonymous(connection, services(connection).admission)


async def principal_guard(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    """Admit (authenticate and rate-limit), then check the handler's `opt["scope"]` (if any)."""
    admission = services(connection).admission
    token = bearer_token(connection)
    if token is None:
        await _count_anonymous(connection, admission)
        log.info("auth denied", reason="missing bearer token")
        raise Unauthenticated("A bearer token is required (Authorization: Bearer <token>).")
    try:
        principal, decision = await admission.admit(token, raw_header(connection, b"x-acting-user"))
    except Unauthenticated:
        await _count_anonymous(connection, admission)
        log.info("auth denied", reason="invalid credentials")
        raise
    _bind(connection, principal)
    apply_decision(connection, admission.policy, decision)
    required: Scope | None = handler.opt.get(SCOPE_OPT)
    if required is not None:
        principal.require(required)


async def _count_anonymous(
    connection: ASGIConnection[Any, Any, Any, Any], admission: Admission
) -> None:
    decision = await admission.admit_anonymous(client_address(connection))
    apply_decision(connection, admission.policy, decision)


def _bind(connection: ASGIConnection[Any, Any, Any, Any], principal: Principal) -> None:
    bind_request_log(
        principal=f"{principal.kind.value}:{principal.credential_id}",
        user_id=principal.user_id,
        actor=principal.actor,
    )
    connection.scope["state"][STATE_PRINCIPAL] = principal


async def charge(connection: ASGIConnection[Any, Any, Any, Any], cost: int) -> None:
    """Count `cost` more requests for the admitted caller (a request that weighs more than one,
    known once its body is read): the RateLimit-* headers then show the decision after it;
    429 when the budget cannot take all of it (the one request the guard counted stays)."""
    if cost <= 0:
        return
    admission = services(connection).admission
    decision = await admission.charge(current_principal(connection), cost)
    apply_decision(connection, admission.policy, decision)


def current_principal(request: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    """The principal the guard admitted."""
    principal: Principal = request.scope["state"][STATE_PRINCIPAL]
    return principal
