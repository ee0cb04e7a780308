"""RFC 9457 problem details for every error answer (`application/problem+json`).

Domain errors map to their status; Litestar's own HTTP errors keep theirs; anything else is a bug:
a clean 500 with the request id and no trace (the trace goes to the log, not the client).
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Annotated, Any

import msgspec
import structlog
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.types import ExceptionHandlersMap
from msgspec import UNSET, Meta, UnsetType

from domain import errors
from domain.use_cases.task_batch import BatchFailed

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://taskhub.dev/problems/"

log = structlog.get_logger("taskhub.errors")

# Litestar raises a plain 500 with this text when the client leaves mid-body.
_CLIENT_GONE = "client disconnected prematurely"


class FieldProblem(msgspec.Struct):
    field: str
    message: str


class Problem(msgspec.Struct, omit_defaults=True):
    """The problem+json body (RFC 9457) with Taskhub's `errors` and `request_id` extensions."""

    type: str
    title: str
    status: int
    detail: str
    request_id: str | None = None
    errors: list[FieldProblem] | None = None


class OperationProblem(Problem, kw_only=True):
    """The problem of a batch: `operation` is the index of the operation it stopped at (absent
    when the request as a whole was refused)."""

    operation: Annotated[int, Meta(ge=0)] | UnsetType = UNSET


_DOMAIN_STATUS: dict[type[errors.DomainError], tuple[int, str]] = {
    errors.Invalid: (422, "validation-failed"),
    errors.NotFound: (404, "not-found"),
    errors.LimitReached: (409, "limit-reached"),
    errors.Conflict: (409, "conflict"),
    errors.Forbidden: (403, "forbidden"),
    errors.Unauthenticated: (401, "unauthenticated"),
    errors.PreconditionFailed: (412, "precondition-failed"),
    errors.RateLimited: (429, "rate-limited"),
    errors.CursorExpired: (410, "cursor-expired"),
    errors.Unavailable: (503, "unavailable"),
}


def problem_response(
    request: Request[Any, Any, Any] | None,
    status: int,
    detail: str,
    *,
    slug: str | None = None,
    title: str | None = None,
    field_errors: list[FieldProblem] | None = None,
    headers: dict[str, str] | None = None,
) -> Response[bytes]:
    request_id = request.scope.get("state", {}).get("request_id") if request is not None else None
    body = problem_body(status, detail, slug=slug, title=title, field_errors=field_errors)
    body.request_id = request_id
    return Response(
        content=msgspec.json.encode(body),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def problem_body(
    status: int,
    detail: str,
    *,
    slug: str | None = None,
    title: str | None = None,
    field_errors: list[FieldProblem] | None = None,
) -> Problem:
    """The problem's body (without a request id)."""
    phrase = HTTPStatus(status).phrase
    if status == 422 and field_errors is None:
        field_errors = []
    return Problem(
        type=TYPE_BASE + (slug or phrase.lower().replace(" ", "-").replace("'", "")),
        title=title or phrase,
        status=status,
        detail=detail,
        errors=field_errors,
    )


def domain_problem(exc: errors.DomainError) -> tuple[Problem, dict[str, str]]:
    """What a domain error answers: its problem body (without a request id) and headers."""
    status, slug = 400, "bad-request"
    for cls in type(exc).__mro__:
        if cls in _DOMAIN_STATUS:
            status, slug = _DOMAIN_STATUS[cls]
            break
    headers: dict[str, str] = {}
    field_errors = None
    if isinstance(exc, errors.Unauthenticated):
        headers["WWW-Authenticate"] = "Bearer"
    elif isinstance(exc, errors.RateLimited):
        headers["Retry-After"] = str(max(1, exc.retry_after))
    elif isinstance(exc, errors.Unavailable):
        headers["Retry-After"] = "1"
    elif isinstance(exc, errors.Invalid):
        field_errors = [FieldProblem(e.field, e.message) for e in exc.errors]
    return problem_body(status, exc.detail, slug=slug, field_errors=field_errors), headers


def domain_error_response(
    request: Request[Any, Any, Any], exc: errors.DomainError
) -> Response[bytes]:
    body, headers = domain_problem(exc)
    return problem_response(
        request,
        body.status,
        body.detail,
        slug=body.type.removeprefix(TYPE_BASE),
        field_errors=body.errors,
        headers=headers or None,
    )


def batch_failed_response(request: Request[Any, Any, Any], exc: BatchFailed) -> Response[bytes]:
    """An atomic batch that stopped at one operation: that operation's problem, with its status,
    and the operation's index."""
    problem, headers = domain_problem(exc.error)
    body = OperationProblem(
        type=problem.type,
        title=problem.title,
        status=problem.status,
        detail=f"operation {exc.index}: {problem.detail} (nothing was changed)",
        request_id=request.scope.get("state", {}).get("request_id"),
        errors=problem.errors,
        operation=exc.index,
    )
    return Response(
        content=msgspec.json.encode(body),
        status_code=problem.status,
        media_type=PROBLEM_JSON,
        headers=headers or None,
    )


def http_exception_response(request: Request[Any, Any, Any], exc: HTTPException) -> Response[bytes]:
    status = exc.status_code
    if exc.detail == _CLIENT_GONE:
        # Not a bug: the caller hung up while sending its body. Nobody reads this answer.
        log.info("client disconnected before sending its whole body")
        return problem_response(request, 400, "The client disconnected before the body ended.")
    if status >= 500:
        # Litestar's own 5xx (e.g. a dependency that failed to resolve) is a bug too: log it,
        # answer without detail.
        return unexpected_error_response(request, exc)
    field_errors = None
    detail = exc.detail or HTTPStatus(status).phrase
    if isinstance(exc, ValidationException):
        # Query/path parameters that do not fit: Litestar's field names, without its value echo.
        field_errors = [
            FieldProblem(str(e.get("key", "")), str(e.get("message", "invalid value")))
            for e in (exc.extra if isinstance(exc.extra, list) else [])
            if isinstance(e, dict)
        ]
        detail = "; ".join(f"{e.field}: {e.message}" for e in field_errors) or "invalid request"
    headers = dict(exc.headers) if exc.headers else None
    if headers:
        for name, value in headers.items():
            if name.lower() == "allow":
                # Litestar lists a route's methods in an order that differs between processes.
                headers[name] = ", ".join(sorted(m.strip() for m in value.split(",")))
    return problem_response(request, status, detail, field_errors=field_errors, headers=headers)


def unexpected_error_response(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    log.error("unhandled error", exc_info=exc, route=request.scope.get("path_template"))
    return problem_response(
        request, 500, "An unexpected error occurred; quote the request id when reporting it."
    )


def exception_handlers() -> ExceptionHandlersMap:
    return {
        errors.DomainError: domain_error_response,
        BatchFailed: batch_failed_response,
        HTTPException: http_exception_response,
        Exception: unexpected_error_response,
    }
