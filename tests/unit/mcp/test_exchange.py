"""A handshake-era request is answered in its own task (`SingleExchange`), byte for byte as the
SDK's per-request transport answers it: results, tool errors, protocol errors, other versions."""

from __future__ import annotations

import json
from typing import Any

import pytest

from adapters.mcp import exchange
from tests.unit.mcp.conftest import Mcp, serving

LEGACY_VERSIONS = ("2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05")


def _call(name: str, arguments: Any, id_: int | str = 1) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": id_,
        "method": "tools/call",
        "params": {"name": name, "arguments": arguments},
    }


async def _post(mcp: Mcp, session: str, body: object, version: str) -> tuple[int, str, bytes]:
    answer = await mcp.http.post(
        "/mcp",
        content=json.dumps(body).encode(),
        headers={
            "Authorization": f"Bearer {session}",
            "Accept": "application/json, text/event-stream",
            "Content-Type": "application/json",
            "MCP-Protocol-Version": version,
        },
    )
    return answer.status_code, answer.headers.get("content-type", ""), answer.content


@pytest.mark.parametrize("version", LEGACY_VERSIONS)
async def test_answers_are_the_sdks_own_byte_for_byte(
    version: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with serving() as mcp:
        _, session = await mcp.account()
        made = await mcp.http.post(
            "/v1/tasks",
            json={
                "title": 'Grüße \u2028 "quoted"\n',
                "labels": ["b", "a"],
                "priority": 3,
                "due_at": "2030-01-02T03:04:05.123456+02:00",
            },
            headers={"Authorization": f"Bearer {session}"},
        )
        assert made.status_code == 201, made.text
        task_id = made.json()["id"]
        await mcp.http.post(
            "/v1/tasks", json={"title": "second"}, headers={"Authorization": f"Bearer {session}"}
        )
        bodies: list[object] = [
            _call("find-tasks", {"limit": 50}),
            _call("find-tasks", {"limit": 1}, "page"),
            _call("get-task", {"id": task_id}),
            _call("get-task", {"id": "01900000-0000-7000-8000-000000000000"}),
            _call("whoami", {}),
            _call("find-projects", {}),
            _call("find-activity", {"task_id": task_id}),
            _call("add-tasks", {"tasks": [{"title": ""}, {"title": "x", "priority": 9}]}),
            _call("add-tasks", {"tasks": "not a list"}),
            _call("find-tasks", {"status": "nope"}),
            _call("delete-everything", {}),
            {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"arguments": {}}},
            {"jsonrpc": "2.0", "id": 3, "method": "tools/list"},
            {"jsonrpc": "2.0", "id": 4, "method": "ping"},
            {"jsonrpc": "2.0", "id": 5, "method": "no/such-method"},
            {"jsonrpc": "2.0", "method": "notifications/initialized"},
            {
                "jsonrpc": "2.0",
                "id": 6,
                "method": "initialize",
                "params": {
                    "protocolVersion": version,
                    "capabilities": {},
                    "clientInfo": {"name": "t", "version": "1"},
                },
            },
        ]
        ours = [await _post(mcp, session, body, version) for body in bodies]
        with monkeypatch.context() as patch:
            patch.setattr(exchange, "_plain_request", lambda _body: None)
            sdks = [await _post(mcp, session, body, version) for body in bodies]
    for body, mine, theirs in zip(bodies, ours, sdks, strict=True):
        assert mine == theirs, body
    status, media, found = ours[0]
    assert (status, media) == (200, "application/json")
    result = json.loads(found)["result"]
    assert len(result["structuredContent"]["items"]) == 2
    assert json.loads(ours[7][2])["result"]["isError"] is True
    assert json.loads(ours[14][2])["error"]["code"] == -32601


async def test_plain_requests_are_served_without_the_per_request_transport(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    served: list[str] = []
    serve = exchange.SingleExchange._serve

    async def counting(self: exchange.SingleExchange, *args: Any) -> None:
        served.append(args[2].method)
        await serve(self, *args)

    monkeypatch.setattr(exchange.SingleExchange, "_serve", counting)
    async with serving() as mcp:
        _, session = await mcp.account()
        for body in (
            _call("whoami", {}),
            {"jsonrpc": "2.0", "method": "notifications/initialized"},
            [_call("whoami", {})],
        ):
            status, _, _ = await _post(mcp, session, body, "2025-11-25")
            assert status in (200, 202, 400)
        status, _, _ = await _post(mcp, session, _call("whoami", {}), "2026-07-28")
    assert served == ["tools/call"]
