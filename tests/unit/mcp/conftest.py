"""An app on the in-memory adapters, served in the test's own event loop (its lifespan entered,
as the MCP endpoint needs), with the SDK's client over an ASGI transport."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from itertools import count
from typing import Any, cast

import httpx2
from litestar import Litestar
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from app.factory import create_app
from tests.unit.http.conftest import (  # noqa: F401 (stderr_logs is a fixture)
    BASE_ENV,
    PASSWORD,
    SERVICE_TOKEN,
    fast_container,
    stderr_logs,
)

BASE = "http://localhost:8000"
_emails = count(1)
ERAS = ("legacy", "2026-07-28")


@dataclass
class Mcp:
    app: Litestar
    http: httpx2.AsyncClient

    async def account(self) -> tuple[str, str]:
        """A new user: (user id, session token)."""
        email = f"mcp{next(_emails)}@example.com"
        made = await self.http.post("/v1/users", json={"email": email, "password": PASSWORD})
        assert made.status_code == 201, made.text
        login = await self.http.post(
            "/v1/auth/sessions", json={"email": email, "password": PASSWORD}
        )
        return made.json()["id"], login.json()["token"]

    async def key(self, session: str, scopes: list[str]) -> str:
        issued = await self.http.post(
            "/v1/api-keys",
            json={"name": "assistant", "scopes": scopes},
            headers={"Authorization": f"Bearer {session}"},
        )
        assert issued.status_code == 201, issued.text
        return str(issued.json()["key"])

    def client(
        self, token: str | None, mode: str = "legacy", headers: dict[str, str] | None = None
    ) -> AbstractAsyncContextManager[Client]:
        """The SDK's client, speaking `mode` ("legacy": the 2025-11-25 handshake era)."""
        all_headers = dict(headers or {})
        if token is not None:
            all_headers["Authorization"] = f"Bearer {token}"
        http = httpx2.AsyncClient(
            transport=httpx2.ASGITransport(app=cast(Any, self.app)),
            base_url=BASE,
            headers=all_headers,
        )
        return _client(http, mode)


@asynccontextmanager
async def _client(http: httpx2.AsyncClient, mode: str) -> AsyncIterator[Client]:
    async with (
        http,
        Client(
            streamable_http_client(f"{BASE}/mcp", http_client=http), mode=mode, cache=None
        ) as client,
    ):
        yield client


@asynccontextmanager
async def serving(**overrides: str) -> AsyncIterator[Mcp]:
    """A started app on `memory://` with the given variables set. Entered in the test itself:
    the SDK's task group must be left by the task that entered it."""
    env = {**BASE_ENV, "SERVICE_AUTH_TOKEN": SERVICE_TOKEN, **overrides}
    container = fast_container(env)
    app = create_app(container.settings(), container)
    async with (
        app.lifespan(),
        httpx2.AsyncClient(
            transport=httpx2.ASGITransport(app=cast(Any, app)), base_url=BASE
        ) as http,
    ):
        yield Mcp(app, http)


def structured(result: Any) -> dict[str, Any]:
    """A tool result's structured content (fails the test when there is none)."""
    assert result.structured_content is not None, result
    return dict(result.structured_content)


def text(result: Any) -> str:
    return "\n".join(block.text for block in result.content if hasattr(block, "text"))
