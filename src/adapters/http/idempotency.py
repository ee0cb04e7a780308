"""Idempotent creation (`Idempotency-Key`), for any handler that declares it.

A route made with `post(..., idempotent=True)` accepts an `Idempotency-Key` header (documented
in the OpenAPI text) and gets this protocol around its handler, which knows nothing of it:
- without the header the handler runs as it is;
- with it, the body (the route's documented body type) is decoded first, so a bad body is
  answered before the key is looked at, and the key is claimed for the calling user;
- the same key with the same body returns the first answer (status, body, Location, ETag) with
  `Idempotent-Replayed: true` for 24 h; with another body it is 422; while the first request is
  still running it is 409 (a claim lasts 60 s at most);
- a first answer with a Location whose body is larger than IDEMPOTENCY_MAX_RESPONSE_BYTES is kept
  as 303 See Other to that Location (a few hundred bytes rather than the body for a day): its
  repeat still creates nothing and is sent to the resource;
- a handler that fails releases the claim, so a retry runs again;
- a store that cannot answer the claim is 503 (rather than risk a duplicate).
Keys are scoped per user across all idempotent routes: the fingerprint covers the method and
path as well as the body, so a key reused on another route (or on another task's comments) is a
422 rather than a replay of an answer to a different request.
The protocol itself is the domain's
`RunOnce` (shared with the MCP tools); this module adapts it to requests and responses.
"""

from __future__ import annotations

import hashlib
import inspect
import re
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import msgspec
import structlog
from litestar import Request, Response
from litestar.exceptions import ClientException, ImproperlyConfiguredException
from litestar.params import HeaderParameter
from litestar.status_codes import HTTP_303_SEE_OTHER

from adapters.http.auth import current_principal
from adapters.http.bodies import decode_body
from adapters.http.responses import EncodedJson
from adapters.http.services import services
from domain.ports import StoredResponse
from domain.use_cases.idempotency import Replayed, RunOnce

log = structlog.get_logger("taskhub.idempotency")

KEY_PARAMETER = "idempotency_key"
IdempotencyKeyHeader = Annotated[
    str | None,
    HeaderParameter(name="Idempotency-Key", description="1-255 visible ASCII characters."),
]

_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
_REPLAYED_HEADERS = ("location", "etag")
# What the protocol's own 303 answer carries, and how the OpenAPI text describes it.
SEE_OTHER_HEADERS = ("Location", "Idempotent-Replayed")
SEE_OTHER_TEXT = "A repeat whose first answer was too large to keep: the resource is at Location"
_encoder = msgspec.json.Encoder()

Handler = Callable[..., Awaitable[Any]]


def idempotent(
    fn: Handler, body_type: type[Any], media_types: frozenset[str], status_code: int
) -> Handler:
    """`fn` (a handler taking `request`) with the protocol around it. The result's signature
    is fn's plus the keyword-only `idempotency_key` header, so Litestar parses and documents the
    header; a call without it goes straight to fn's own coroutine."""
    signature = inspect.signature(fn)
    if "request" not in signature.parameters or KEY_PARAMETER in signature.parameters:
        raise ImproperlyConfiguredException(
            f"an idempotent handler takes `request` and no `{KEY_PARAMETER}`: {fn.__qualname__}"
        )

    async def once(args: tuple[Any, ...], kwargs: dict[str, Any], key: str) -> Response[Any]:
        request: Request[Any, Any, Any] = kwargs["request"]
        body = await decode_body(request, body_type, media_types, keep=True)
        if not _KEY.match(key):
            raise ClientException(detail="Idempotency-Key must be 1-255 visible ASCII characters")
        found = services(request)
        max_bytes = found.idempotency_max_response_bytes

        async def first() -> Response[Any]:
            return _as_response(await fn(*args, **kwargs), status_code)

        result = await RunOnce(found.idempotency_store, _store_trouble).execute(
            current_principal(request).user_id,
            key,
            _fingerprint(request, body),
            first,
            lambda response: _kept(response, status_code, max_bytes),
            "Idempotency-Key",
        )
        return _replay(result.response) if isinstance(result, Replayed) else result

    def run(*args: Any, idempotency_key: str | None = None, **kwargs: Any) -> Awaitable[Any]:
        if idempotency_key is None:
            return fn(*args, **kwargs)
        return once(args, kwargs, idempotency_key)

    run.__name__, run.__qualname__, run.__module__ = fn.__name__, fn.__qualname__, fn.__module__
    run.__doc__ = fn.__doc__
    run.__annotations__ = {**fn.__annotations__, KEY_PARAMETER: IdempotencyKeyHeader}
    key_parameter = inspect.Parameter(
        KEY_PARAMETER, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=IdempotencyKeyHeader
    )
    run.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[*signature.parameters.values(), key_parameter]
    )
    # Litestar awaits what `run` returns: the handler's coroutine, or the protocol's.
    return inspect.markcoroutinefunction(run)


def _fingerprint(request: Request[Any, Any, Any], body: Any) -> str:
    """What a repeat must match: the method, the path (a resource's id included) and the body."""
    digest = hashlib.sha256()
    digest.update(f"{request.scope['method']} {request.scope['path']}\n".encode())
    digest.update(_encoder.encode(body))
    return digest.hexdigest()


def _replay(stored: StoredResponse) -> Response[Any]:
    return Response(
        stored.body,
        status_code=stored.status,
        media_type="application/json",
        headers={**dict(stored.headers), "Idempotent-Replayed": "true"},
    )


def _store_trouble(what: str, error: str) -> None:
    log.warning(what, error=error)


def _kept(response: Response[Any], status_code: int, max_bytes: int) -> StoredResponse:
    """What is kept of a first answer: all of it, or a 303 to its Location when it is too large."""
    content = response.content
    body = content if isinstance(content, bytes) else _encoder.encode(content)
    headers = tuple((k, v) for k, v in response.headers.items() if k.lower() in _REPLAYED_HEADERS)
    location = response.headers.get("Location")
    if len(body) > max_bytes and location is not None:
        return StoredResponse(HTTP_303_SEE_OTHER, b"", (("Location", location),))
    return StoredResponse(status=response.status_code or status_code, body=body, headers=headers)


def _as_response(result: Any, status_code: int) -> Response[Any]:
    """The handler's answer as a Response (a bare value is JSON with the route's status)."""
    if isinstance(result, Response):
        return result
    return EncodedJson(_encoder.encode(result), status_code=status_code)
