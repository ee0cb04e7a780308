"""The MCP endpoint is built on its first request: an app that has not answered MCP has not loaded
the SDK (nor Litestar's pydantic support), and the session manager's lifetime is the lifespan's."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast

import pytest

from adapters.mcp.lazy import LazyMcpEndpoint, McpNotRunning
from tests.unit.http.conftest import run_probe
from tests.unit.mcp.conftest import serving

MCP_HEADERS = {"Accept": "application/json, text/event-stream"}

PROBE = """
import asyncio, json, sys
from litestar.testing import AsyncTestClient
from app.factory import create_app
from app.settings import load_settings

HEAVY = ("mcp", "mcp_types", "litestar.plugins.pydantic", "pydantic.v1")

async def main():
    app = create_app(load_settings(dotenv_path=None))
    seen = {"built": [m for m in HEAVY if m in sys.modules]}
    async with AsyncTestClient(app) as client:
        seen["served"] = [m for m in HEAVY if m in sys.modules]
        answer = await client.get("/.well-known/oauth-protected-resource/mcp")
        seen["status"] = answer.status_code
        seen["resource"] = answer.json()["resource"]
        seen["after"] = [m for m in HEAVY if m in sys.modules]
    print(json.dumps(seen))

asyncio.run(main())
"""


def test_the_sdk_loads_on_the_first_mcp_request_and_litestar_loads_no_pydantic() -> None:
    seen = run_probe(PROBE)
    assert seen["built"] == []
    assert seen["served"] == []
    assert seen["status"] == 200
    assert seen["resource"].endswith("/mcp")
    assert seen["after"] == ["mcp", "mcp_types"]


class FakeEndpoint:
    """Stands in for McpEndpoint: records when its session manager runs."""

    def __init__(self, log: list[str]) -> None:
        self.log = log

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        self.log.append("enter")
        try:
            yield
        finally:
            self.log.append("exit")


def lazy_over(log: list[str], fail: bool = False) -> LazyMcpEndpoint:
    def build() -> Any:
        log.append("build")
        if fail:
            raise RuntimeError("no SDK")
        return FakeEndpoint(log)

    return LazyMcpEndpoint(cast(Any, build))


async def test_concurrent_first_requests_share_one_build_and_the_lifespan_ends_the_manager() -> (
    None
):
    log: list[str] = []
    lazy = lazy_over(log)
    async with lazy.running():
        first, second = await asyncio.gather(lazy.endpoint(), lazy.endpoint())
        assert first is second
        assert log == ["build", "enter"]
    assert log == ["build", "enter", "exit"]
    # A second lifespan runs a new session manager over the same built endpoint.
    async with lazy.running():
        assert await lazy.endpoint() is first
    assert log == ["build", "enter", "exit", "enter", "exit"]


async def test_a_lifespan_without_mcp_requests_builds_nothing() -> None:
    log: list[str] = []
    lazy = lazy_over(log)
    async with lazy.running():
        await asyncio.sleep(0)
    assert log == []
    assert not lazy.built


async def test_outside_the_lifespan_the_endpoint_refuses() -> None:
    lazy = lazy_over([])
    with pytest.raises(McpNotRunning):
        await lazy.endpoint()


async def test_a_failed_build_fails_the_requests_and_not_the_shutdown() -> None:
    log: list[str] = []
    lazy = lazy_over(log, fail=True)
    async with lazy.running():
        for _ in range(2):
            with pytest.raises(RuntimeError, match="no SDK"):
                await lazy.endpoint()
    assert log == ["build"]


async def test_a_caller_that_goes_away_does_not_cancel_the_build() -> None:
    log: list[str] = []
    lazy = lazy_over(log)
    async with lazy.running():
        waiting = asyncio.create_task(lazy.endpoint())
        await asyncio.sleep(0)
        waiting.cancel()
        assert isinstance(await lazy.endpoint(), FakeEndpoint)
    assert log == ["build", "enter", "exit"]


async def test_a_broken_sdk_answers_mcp_with_500_and_leaves_the_http_api_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import adapters.mcp.server

    def broken(*_: Any, **__: Any) -> Any:
        raise ImportError("the SDK is broken")

    monkeypatch.setattr(adapters.mcp.server, "McpEndpoint", broken)
    async with serving() as mcp:
        answer = await mcp.http.post(
            "/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"}, headers=MCP_HEADERS
        )
        assert answer.status_code == 500
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert (await mcp.http.get("/health")).status_code == 200
