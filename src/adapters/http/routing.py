"""Route decorators for Taskhub's handlers: Litestar's, minus a per-request copy, plus
`post(..., idempotent=True)`.

Litestar 2.25 hands every guard `copy(handler)` (a shallow copy of the whole route handler, made
on each call so a guard cannot change the handler). Taskhub's guards only read `handler.opt`, so
these decorators build route handlers whose guards get the handler itself. An idempotent route
runs its handler inside the Idempotency-Key protocol (adapters.http.idempotency). Everything else
(routing, parameters, OpenAPI, responses) is Litestar's `HTTPRouteHandler`, unchanged.
"""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.enums import HttpMethod
from litestar.exceptions import ImproperlyConfiguredException
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.status_codes import HTTP_303_SEE_OTHER
from litestar.types import AnyCallable

from adapters.http import idempotency
from adapters.http.openapi import BODY_OPT, HEADERS_OPT, MEDIA_OPT

IDEMPOTENT_OPT = "idempotent"


class Route(HTTPRouteHandler):
    """An HTTP route handler whose guards read it in place (they must not change it)."""

    async def authorize_connection(self, connection: ASGIConnection[Any, Any, Any, Any]) -> None:
        for guard in self.resolve_guards():
            await guard(connection, self)  # type: ignore[misc]

    def __call__(self, fn: AnyCallable) -> Route:
        if self.opt.get(IDEMPOTENT_OPT):
            if BODY_OPT not in self.opt:
                raise ImproperlyConfiguredException("an idempotent route documents its body")
            fn = idempotency.idempotent(
                fn, self.opt[BODY_OPT], frozenset(self.opt[MEDIA_OPT]), self.status_code
            )
        super().__call__(fn)
        return self


def get(path: str | None = None, **kwargs: Any) -> Route:
    return Route(path, http_method=HttpMethod.GET, **kwargs)


def post(path: str | None = None, *, idempotent: bool = False, **kwargs: Any) -> Route:
    """`idempotent=True`: the handler runs inside the Idempotency-Key protocol. A route whose
    success answer carries `Location` also documents the protocol's 303 (a repeat whose first
    answer was too large to keep is sent there); without one, every first answer is kept."""
    if idempotent:
        opt = kwargs.get("opt", {})
        headers = dict(opt.get(HEADERS_OPT, {}))
        kwargs["opt"] = {**opt, IDEMPOTENT_OPT: True, HEADERS_OPT: headers}
        if "Location" in headers.get(kwargs.get("status_code"), ()):
            headers[HTTP_303_SEE_OTHER] = idempotency.SEE_OTHER_HEADERS
            kwargs["responses"] = {
                HTTP_303_SEE_OTHER: ResponseSpec(None, description=idempotency.SEE_OTHER_TEXT),
                **kwargs.get("responses", {}),
            }
    return Route(path, http_method=HttpMethod.POST, **kwargs)


def patch(path: str | None = None, **kwargs: Any) -> Route:
    return Route(path, http_method=HttpMethod.PATCH, **kwargs)


def delete(path: str | None = None, **kwargs: Any) -> Route:
    return Route(path, http_method=HttpMethod.DELETE, **kwargs)
