"""OpenAPI text that matches what the handlers really do.

Handlers decode their bodies themselves (see bodies.py), so Litestar cannot see the request
schemas: each handler names its body type in `opt` and `document_request_bodies` writes the
`requestBody` entries (schemas from msgspec) into the generated document. Error answers are
declared as problem+json.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import msgspec
from litestar import Litestar
from litestar.openapi.datastructures import ResponseSpec
from litestar.routes import HTTPRoute

from adapters.http.problems import PROBLEM_JSON, Problem

BODY_OPT = "request_body"
MEDIA_OPT = "request_media_types"


def documented_body(
    type_: type[msgspec.Struct], media_types: tuple[str, ...] = ("application/json",)
) -> dict[str, Any]:
    """`opt` entries naming a handler's request body type and accepted media types."""
    return {BODY_OPT: type_, MEDIA_OPT: media_types}


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


def document_request_bodies(app: Litestar, schema: dict[str, Any]) -> dict[str, Any]:
    """Add `requestBody` (and its component schemas) for every handler with a BODY_OPT."""
    bodies: list[tuple[str, str, type[msgspec.Struct], tuple[str, ...]]] = []
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            body_type = handler.opt.get(BODY_OPT)
            if body_type is None:
                continue
            for method in handler.http_methods:
                bodies.append(
                    (route.path_format, method.lower(), body_type, handler.opt[MEDIA_OPT])
                )
    if not bodies:
        return schema
    refs, components = msgspec.json.schema_components(
        [b[2] for b in bodies], ref_template="#/components/schemas/{name}"
    )
    schema.setdefault("components", {}).setdefault("schemas", {}).update(components)
    for (path, verb, _, media_types), ref in zip(bodies, refs, strict=True):
        operation = schema.get("paths", {}).get(path, {}).get(verb)
        if operation is None:
            continue
        operation["requestBody"] = {
            "required": True,
            "content": {media: {"schema": ref} for media in media_types},
        }
    return schema
