"""The MCP endpoint served by two `taskhub serve` processes behind one address (sharing one
PostgreSQL and one Redis), driven by the SDK's own client in both protocol eras and by a
third-party client, the MCP Inspector CLI. Consecutive requests alternate between the two
processes, so every multi-request exchange crosses them: the endpoint must be stateless."""

from __future__ import annotations

import concurrent.futures
import itertools
import json
import os
import secrets
import shutil
import subprocess
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.integration.backends import RedisTarget
from tests.integration.scale.processes import App, clean_env, create_accounts, free_port, start_apps

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

ERAS = ("legacy", "2026-07-28")
SERVICE_TOKEN = secrets.token_urlsafe(32)
CI_TOOLS = Path(
    os.environ.get("CI_TOOLS")
    or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "taskhub-ci" / "tools"
)


@dataclass(frozen=True)
class Pair:
    apps: tuple[App, ...]
    writer_key: str  # tasks:read, tasks:write
    reader_key: str  # tasks:read (same user)

    @property
    def url(self) -> str:
        """The one address clients are given: the first process's (see RoundRobin)."""
        return f"{self.apps[0].base}/mcp"


@pytest.fixture(scope="module")
def pair(
    scale_db: str, redis_target: RedisTarget, redis_prefix: str, workdir: Path
) -> Iterator[Pair]:
    common = {
        "DATABASE_URL": scale_db,
        "REDIS_URL": redis_target.url,
        "REDIS_KEY_PREFIX": redis_prefix,
        "SESSION_HASH_SECRET": secrets.token_urlsafe(32),
        "SERVICE_AUTH_TOKEN": SERVICE_TOKEN,
        "LOG_LEVEL": "INFO",
        "SQLALCHEMY_POOL_SIZE": "3",
        "REDIS_TIMEOUT": "5",
        "SERVE_WORKER": "false",
    }
    envs = [clean_env(workdir, **common, PORT=str(free_port())) for _ in range(2)]
    wanted = {"mcp@example.com": [["tasks:read", "tasks:write"], ["tasks:read"]]}
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        accounts = pool.submit(create_accounts, clean_env(workdir, **common), wanted)
        apps = start_apps(envs)
        try:
            keys = accounts.result(timeout=180)
        except BaseException:
            for app in apps:
                app.stop()
            raise
    try:
        yield Pair(tuple(apps), *keys["mcp@example.com"])
    finally:
        for app in apps:
            app.stop()


class RoundRobin(httpx2.AsyncBaseTransport):
    """One address in front of several processes: each request goes to the next port in turn
    (its Host header still names the first, as behind a load balancer)."""

    def __init__(self, apps: tuple[App, ...]) -> None:
        self._inner = httpx2.AsyncHTTPTransport()
        self._ports = itertools.cycle([int(app.base.rsplit(":", 1)[1]) for app in apps])
        self.sent: Counter[int] = Counter()

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        port = next(self._ports)
        self.sent[port] += 1
        request.url = request.url.copy_with(port=port)
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


@asynccontextmanager
async def connect(
    pair: Pair, token: str, mode: str, headers: dict[str, str] | None = None
) -> AsyncIterator[tuple[Client, RoundRobin]]:
    transport = RoundRobin(pair.apps)
    http = httpx2.AsyncClient(
        transport=transport,
        headers={"Authorization": f"Bearer {token}", **(headers or {})},
        timeout=60,
    )
    async with (
        http,
        Client(streamable_http_client(pair.url, http_client=http), mode=mode, cache=None) as client,
    ):
        yield client, transport


def structured(result: Any) -> dict[str, Any]:
    assert result.structured_content is not None, result
    return dict(result.structured_content)


def text(result: Any) -> str:
    return "\n".join(block.text for block in result.content if hasattr(block, "text"))


@pytest.mark.parametrize("mode", ERAS)
async def test_the_task_tools_work_across_two_processes(pair: Pair, mode: str) -> None:
    key = f"batch-{mode}-{secrets.token_hex(4)}"
    label = f"mcp-{secrets.token_hex(4)}"
    tasks = [{"title": f"task {i}", "labels": [label]} for i in range(3)]
    async with connect(pair, pair.writer_key, mode) as (client, transport):
        names = {t.name for t in (await client.list_tools()).tools}
        first = structured(
            await client.call_tool("add-tasks", {"tasks": tasks, "idempotency_key": key})
        )
        again = structured(
            await client.call_tool("add-tasks", {"tasks": tasks, "idempotency_key": key})
        )
        created = [r["task"] for r in first["results"]]
        titles: list[str] = []
        cursor = None
        while True:  # one task a page: each cursor is read by the other process
            args: dict[str, Any] = {"labels": [label], "limit": 1, "sort": "created_at"}
            if cursor:
                args["cursor"] = cursor
            page = structured(await client.call_tool("find-tasks", args))
            titles += [t["title"] for t in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        changed = structured(
            await client.call_tool(
                "update-tasks",
                {
                    "patches": [
                        {
                            "id": created[0]["id"],
                            "if_match": created[0]["etag"],
                            "changes": {"priority": 4},
                        }
                    ]
                },
            )
        )
        stale = await client.call_tool(
            "update-tasks",
            {
                "patches": [
                    {
                        "id": created[0]["id"],
                        "if_match": created[0]["etag"],
                        "changes": {"priority": 2},
                    }
                ]
            },
        )
        done = structured(await client.call_tool("complete-tasks", {"ids": [created[1]["id"]]}))
    assert names == {
        "whoami",
        "find-tasks",
        "get-task",
        "add-tasks",
        "update-tasks",
        "complete-tasks",
        "delete-tasks",
        "restore-tasks",
        "add-comment",
        "find-comments",
        "find-activity",
    }
    assert len(transport.sent) == 2
    assert min(transport.sent.values()) >= 3
    assert first["succeeded"] == 3
    assert again["replayed"] is True
    assert [r["task"]["id"] for r in again["results"]] == [t["id"] for t in created]
    assert titles == ["task 0", "task 1", "task 2"]
    assert changed["results"][0]["task"]["priority"] == 4
    assert stale.is_error
    assert "is stale" in structured(stale)["results"][0]["error"]["message"]
    assert done["results"][0]["task"]["status"] == "done"


@pytest.mark.parametrize("mode", ERAS)
async def test_a_read_only_key_sees_and_may_do_only_reads(pair: Pair, mode: str) -> None:
    async with connect(pair, pair.reader_key, mode) as (client, _):
        names = {t.name for t in (await client.list_tools()).tools}
        refused = await client.call_tool("add-tasks", {"tasks": [{"title": "nope"}]})
    assert names == {"whoami", "find-tasks", "get-task", "find-comments", "find-activity"}
    assert refused.is_error
    assert text(refused) == "this credential lacks the tasks:write scope"


async def test_the_service_acting_for_a_user_is_attributed_in_the_audit_line(pair: Pair) -> None:
    async with connect(pair, pair.reader_key, "legacy") as (client, _):
        user_id = structured(await client.call_tool("whoami", {}))["user"]["id"]
    title = f"by the service {secrets.token_hex(4)}"
    async with connect(pair, SERVICE_TOKEN, "2026-07-28", {"X-Acting-User": user_id}) as (
        client,
        _,
    ):
        who = structured(await client.call_tool("whoami", {}))
        added = structured(await client.call_tool("add-tasks", {"tasks": [{"title": title}]}))
    task_id = added["results"][0]["task"]["id"]
    assert who["actor"] == "service"
    lines = [
        json.loads(line)
        for app in pair.apps
        for line in app.log.read_text(errors="replace").splitlines()
        if task_id in line and '"request"' in line
    ]
    assert len(lines) == 1, lines
    assert lines[0]["via"] == "mcp"
    assert lines[0]["actor"] == "service"
    assert lines[0]["user_id"] == user_id
    assert lines[0]["route"] == "/mcp"


def inspector() -> str:
    """The MCP Inspector's CLI, else a skip saying why (a failure under CI=true)."""
    for candidate in (
        os.environ.get("MCP_INSPECTOR"),
        str(CI_TOOLS / "npm" / "node_modules" / ".bin" / "mcp-inspector"),
        shutil.which("mcp-inspector"),
    ):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    reason = (
        "MCP Inspector not found (set MCP_INSPECTOR, or run `make openapi-tools`, which "
        "installs npm @modelcontextprotocol/inspector)"
    )
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        pytest.fail(f"{reason}; CI=true: the third-party client test must run")
    pytest.skip(reason)


def run_inspector(pair: Pair, *args: str) -> dict[str, Any]:
    """The documented command (docs/mcp.md): `mcp-inspector --cli URL --transport http
    --header "Authorization: Bearer KEY" --method ...`."""
    done = subprocess.run(
        [
            inspector(),
            "--cli",
            pair.url,
            "--transport",
            "http",
            "--header",
            f"Authorization: Bearer {pair.reader_key}",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer


def test_the_mcp_inspector_lists_the_tools_and_calls_whoami(pair: Pair) -> None:
    listed = run_inspector(pair, "--method", "tools/list")
    called = run_inspector(pair, "--method", "tools/call", "--tool-name", "whoami")
    assert {t["name"] for t in listed["tools"]} == {
        "whoami",
        "find-tasks",
        "get-task",
        "find-comments",
        "find-activity",
    }
    assert called["isError"] is False
    assert called["structuredContent"]["scopes"] == ["tasks:read"]
