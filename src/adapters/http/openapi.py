"""OpenAPI text that matches what the handlers really do.

Handlers decode their bodies (see bodies.py) and some query parameters themselves, so Litestar
cannot see those types: a handler names its body and query types in `opt`, and `describe_api`
writes the `requestBody` entries and the query parameter schemas (from msgspec) into the
generated document.

The answers every operation shares are written here by rule, once, rather than per handler:
- every answer carries `X-Request-ID`;
- an operation behind a guard (every `/v1` one) is rate-limited and needs the database: its
  answers carry `RateLimit-*`, and it can answer 429 and 503 (both with `Retry-After`);
- one behind the principal guard takes a bearer credential (401 with `WWW-Authenticate`, and
  `X-Acting-User` for the service token); one that needs a scope can answer 403;
- one with a JSON body can answer 400 (not JSON), 413 (too large), 415 (media type) and 422;
- one without a guard is public (`security: []`).
Error answers are problem+json. A handler adds only what is its own: statuses such as 404, 409,
412 or 304 (`responses=`), and the headers of its success answer (`documented_headers`).
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import msgspec
from litestar import Litestar
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.routes import HTTPRoute

from adapters.http.auth import SCOPE_OPT, anonymous_guard, principal_guard
from adapters.http.problems import PROBLEM_JSON, Problem

BODY_OPT = "request_body"
MEDIA_OPT = "request_media_types"
QUERY_OPT = "query_parameters"
HEADERS_OPT = "response_headers"

SCHEMA_REF = "#/components/schemas/{name}"
HEADER_REF = "#/components/headers/{name}"
PARAMETER_REF = "#/components/parameters/{name}"

# Response headers, declared once under components/headers.
HEADERS: dict[str, dict[str, Any]] = {
    "X-Request-ID": {
        "description": "The caller's X-Request-ID when it is 1-128 characters of "
        "A-Za-z0-9._-, else one the server made. Quote it when reporting a problem.",
        "schema": {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,128}$"},
    },
    "RateLimit-Limit": {
        "description": "Requests allowed per window for this caller.",
        "schema": {"type": "integer", "minimum": 1},
    },
    "RateLimit-Remaining": {
        "description": "Requests left in the current window.",
        "schema": {"type": "integer", "minimum": 0},
    },
    "RateLimit-Reset": {
        "description": "Seconds until the budget is full again.",
        "schema": {"type": "integer", "minimum": 0},
    },
    "Retry-After": {
        "description": "Whole seconds to wait before trying again.",
        "schema": {"type": "integer", "minimum": 1},
    },
    "WWW-Authenticate": {
        "description": "The authentication scheme to use: `Bearer`.",
        "schema": {"type": "string"},
    },
    "ETag": {
        "description": 'Strong entity tag of the resource (a task, a project), `"<id>.<version>"`: '
        "send it in If-Match (PATCH, DELETE) or If-None-Match (GET).",
        "schema": {"type": "string"},
    },
    "Location": {
        "description": "The path of the created resource.",
        "schema": {"type": "string", "format": "uri-reference"},
    },
    "Link": {
        "description": 'The next page, `<...>; rel="next"`; absent on the last page.',
        "schema": {"type": "string"},
    },
    "Idempotent-Replayed": {
        "description": "`true` when this is the stored answer to an earlier request with the "
        "same Idempotency-Key.",
        "schema": {"type": "string", "enum": ["true"]},
    },
}
RATE_LIMIT_HEADERS = ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset")

# Request header parameters shared by operations, under components/parameters.
PARAMETERS: dict[str, dict[str, Any]] = {
    "XActingUser": {
        "name": "X-Acting-User",
        "in": "header",
        "required": False,
        "description": "With the service token only: the id of the user the call acts for (it "
        "then has all scopes). A user id that names no user is 401.",
        "schema": {"type": "string"},
    },
}

BODY_STATUSES = (400, 413, 415, 422)


def documented_body(
    type_: type[msgspec.Struct], media_types: tuple[str, ...] = ("application/json",)
) -> dict[str, Any]:
    """`opt` entries naming a handler's request body type and accepted media types."""
    return {BODY_OPT: type_, MEDIA_OPT: media_types}


def documented_query(type_: type[msgspec.Struct]) -> dict[str, Any]:
    """`opt` entry naming the Struct whose fields describe a handler's query parameters (their
    types, bounds, enums and formats) where the handler parses them itself."""
    return {QUERY_OPT: type_}


def documented_headers(headers: dict[int, tuple[str, ...]]) -> dict[str, Any]:
    """`opt` entry naming the HEADERS a handler's answers carry, by status."""
    return {HEADERS_OPT: headers}


def PROBLEMS(*statuses: int) -> dict[int, ResponseSpec]:
    """Declare error answers as problem+json (RFC 9457)."""
    return {
        status: ResponseSpec(
            data_container=Problem,
            generate_examples=False,
            description=HTTPStatus(status).phrase,
            media_type=PROBLEM_JSON,
        )
        for status in statuses
    }


def _problem(status: int) -> dict[str, Any]:
    return {
        "description": HTTPStatus(status).phrase,
        "content": {PROBLEM_JSON: {"schema": {"$ref": SCHEMA_REF.format(name="Problem")}}},
    }


def _handlers(app: Litestar) -> list[tuple[str, str, HTTPRouteHandler]]:
    """(path, lower-case method, handler) of every operation in the document."""
    found = []
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            if not handler.resolve_include_in_schema():
                continue
            for method in handler.http_methods:
                found.append((route.path_format, method.lower(), handler))
    return found


def describe_api(app: Litestar, schema: dict[str, Any]) -> dict[str, Any]:
    """The generated document, completed: bodies, query parameters, shared answers, headers."""
    handlers = _handlers(app)
    components = schema.setdefault("components", {})
    _document_types(handlers, schema, components)
    components["headers"] = {name: dict(spec) for name, spec in HEADERS.items()}
    components["parameters"] = {name: dict(spec) for name, spec in PARAMETERS.items()}
    for path, verb, handler in handlers:
        operation = schema.get("paths", {}).get(path, {}).get(verb)
        if operation is not None:
            _apply_rules(operation, handler)
    return schema


def _document_types(
    handlers: list[tuple[str, str, HTTPRouteHandler]],
    schema: dict[str, Any],
    components: dict[str, Any],
) -> None:
    """requestBody and query parameter schemas from the Structs the handlers name."""
    wanted = [
        (path, verb, kind, handler.opt[kind])
        for path, verb, handler in handlers
        for kind in (BODY_OPT, QUERY_OPT)
        if handler.opt.get(kind) is not None
    ]
    if not wanted:
        return
    refs, defs = msgspec.json.schema_components(
        [w[3] for w in wanted], ref_template=SCHEMA_REF.format(name="{name}")
    )
    schemas = components.setdefault("schemas", {})
    for (path, verb, kind, type_), ref in zip(wanted, refs, strict=True):
        operation = schema.get("paths", {}).get(path, {}).get(verb)
        if operation is None:
            continue
        handler_opt = next(h.opt for p, v, h in handlers if (p, v) == (path, verb))
        if kind == BODY_OPT:
            operation["requestBody"] = {
                "required": True,
                "content": {media: {"schema": ref} for media in handler_opt[MEDIA_OPT]},
            }
            continue
        # A query Struct describes parameters, not a body: inline its fields' schemas.
        query_schema = defs.pop(type_.__name__)
        properties: dict[str, Any] = query_schema.get("properties", {})
        for parameter in operation.get("parameters", []):
            field = properties.get(parameter["name"])
            if parameter["in"] == "query" and field is not None:
                parameter["schema"] = _without_null(field)
    schemas.update(defs)


def _without_null(field: dict[str, Any]) -> dict[str, Any]:
    """An optional parameter is absent rather than null: drop the `null` alternative."""
    for key in ("anyOf", "oneOf"):
        choices = field.get(key)
        if choices and {"type": "null"} in choices:
            rest = [c for c in choices if c != {"type": "null"}]
            merged = {k: v for k, v in field.items() if k != key}
            if merged.get("default", 0) is None:
                del merged["default"]
            if len(rest) == 1:
                return {**rest[0], **merged}
            return {**merged, key: rest}
    return field


def _apply_rules(operation: dict[str, Any], handler: HTTPRouteHandler) -> None:
    guards = handler.resolve_guards()
    authenticated = principal_guard in guards
    limited = authenticated or anonymous_guard in guards
    statuses: set[int] = set()
    if limited:
        statuses |= {429, 503}
    if authenticated:
        statuses.add(401)
        operation.setdefault("parameters", []).append(
            {"$ref": PARAMETER_REF.format(name="XActingUser")}
        )
    else:
        operation["security"] = []  # sign-up, log-in and the operations endpoints are public
    if handler.opt.get(SCOPE_OPT) is not None:
        statuses.add(403)
    if handler.opt.get(BODY_OPT) is not None:
        statuses.update(BODY_STATUSES)
    responses: dict[str, Any] = operation.setdefault("responses", {})
    # Litestar documents a 400 of its own shape (not problem+json) for any handler with
    # parameters. Taskhub's are strings the handlers check themselves: a 400 is documented only
    # where a handler declares one (or reads a body).
    if PROBLEM_JSON not in responses.get("400", {}).get("content", {PROBLEM_JSON: None}):
        del responses["400"]
    for status in statuses:
        responses.setdefault(str(status), _problem(status))
    for parameter in operation.get("parameters", []):
        if "schema" in parameter and not parameter.get("required"):
            parameter["schema"] = _without_null(parameter["schema"])
    own_headers: dict[int, tuple[str, ...]] = handler.opt.get(HEADERS_OPT, {})
    for code, response in responses.items():
        names = ["X-Request-ID", *own_headers.get(int(code), ())]
        if limited:
            names += RATE_LIMIT_HEADERS
        if code in ("429", "503") and PROBLEM_JSON in response.get("content", {}):
            names.append("Retry-After")
        if code == "401":
            names.append("WWW-Authenticate")
        response["headers"] = {name: {"$ref": HEADER_REF.format(name=name)} for name in names}
    operation["responses"] = dict(sorted(responses.items()))
