"""Route decorators for Taskhub's handlers: Litestar's, minus a per-request copy.

Litestar 2.25 hands every guard `copy(handler)` (a shallow copy of the whole route handler, made
on each call so a guard cannot change the handler). Taskhub's guards only read `handler.opt`, so
these decorators build route handlers whose guards get the handler itself. Everything else
(routing, parameters, OpenAPI, responses) is Litestar's `HTTPRouteHandler`, unchanged.
"""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.enums import HttpMethod
from litestar.handlers import HTTPRouteHandler


class Route(HTTPRouteHandler):
    """An HTTP route handler whose guards read it in place (they must not change it)."""

    async def authorize_connection(self, connection: ASGIConnection[Any, Any, Any, Any]) -> None:
        for guard in self.resolve_guards():
            await guard(connection, self)  # type: ignore[misc]


def get(path: str | None = None, **kwargs: Any) -> Route:
    return Route(path, http_method=HttpMethod.GET, **kwargs)


def post(path: str | None = None, **kwargs: Any) -> Route:
    return Route(path, http_method=HttpMethod.POST, **kwargs)


def patch(path: str | None = None, **kwargs: Any) -> Route:
    return Route(path, http_method=HttpMethod.PATCH, **kwargs)


def delete(path: str | None = None, **kwargs: Any) -> Route:
    return Route(path, http_method=HttpMethod.DELETE, **kwargs)
