"""The route decorators: Litestar's handlers, whose guards get the handler itself (no copy)."""

from __future__ import annotations

from typing import Any

from litestar import Litestar
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.handlers.base import BaseRouteHandler
from litestar.testing import TestClient

from adapters.http.routing import Route, delete, get, patch, post


def test_guards_see_the_handler_itself_and_its_opt() -> None:
    seen: list[BaseRouteHandler] = []

    async def guard(_: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
        seen.append(handler)
        if handler.opt.get("deny"):
            raise NotAuthorizedException("no")

    @get("/open", guards=[guard], opt={"deny": False}, sync_to_thread=False)
    def open_() -> str:
        return "ok"

    @get("/closed", guards=[guard], opt={"deny": True}, sync_to_thread=False)
    def closed() -> str:
        return "never"

    with TestClient(Litestar([open_, closed])) as client:
        assert client.get("/open").text == "ok"
        assert client.get("/open").status_code == 200
        assert client.get("/closed").status_code == 401
    assert len(seen) == 3
    assert seen[0] is seen[1]  # the same registered handler, not a copy per call
    assert isinstance(seen[0], Route)


def test_each_decorator_serves_its_method() -> None:
    @post("/p", sync_to_thread=False)
    def made() -> str:
        return "post"

    @patch("/p", sync_to_thread=False)
    def changed() -> str:
        return "patch"

    @delete("/p", sync_to_thread=False)
    def gone() -> None:
        return None

    with TestClient(Litestar([made, changed, gone])) as client:
        assert (client.post("/p").status_code, client.post("/p").text) == (201, "post")
        assert client.patch("/p").text == "patch"
        assert client.delete("/p").status_code == 204
        assert client.get("/p").status_code == 405
