"""The MCP tools through the SDK's own client, in both protocol eras, against the app on the
in-memory adapters: what a model sees, what it may do, and what it gets for bad input."""

from __future__ import annotations

import json
from collections.abc import Callable

import jsonschema  # type: ignore[import-untyped]
import pytest

from tests.unit.http.conftest import SERVICE_TOKEN
from tests.unit.mcp.conftest import ERAS, serving, structured, text

ALL_TOOLS = {
    "whoami",
    "find-tasks",
    "get-task",
    "add-tasks",
    "update-tasks",
    "complete-tasks",
    "delete-tasks",
    "restore-tasks",
    "find-projects",
    "add-project",
    "add-comment",
    "find-comments",
    "find-activity",
}


@pytest.mark.parametrize("mode", ERAS)
async def test_a_session_sees_every_tool_with_its_annotations(mode: str) -> None:
    async with serving() as mcp:
        _, session = await mcp.account()
        async with mcp.client(session, mode) as client:
            tools = {t.name: t for t in (await client.list_tools()).tools}
    assert set(tools) == ALL_TOOLS
    for name in ("whoami", "find-tasks", "get-task"):
        hints = tools[name].annotations
        assert hints is not None
        assert hints.read_only_hint is True
    update = tools["update-tasks"].annotations
    assert update is not None
    assert (update.read_only_hint, update.destructive_hint, update.idempotent_hint) == (
        False,
        True,
        True,
    )
    deleting = tools["delete-tasks"].annotations
    assert deleting is not None
    assert (deleting.read_only_hint, deleting.destructive_hint, deleting.idempotent_hint) == (
        False,
        True,
        True,
    )
    add = tools["add-tasks"].annotations
    assert add is not None
    assert (add.read_only_hint, add.destructive_hint, add.idempotent_hint) == (False, False, False)
    for tool in tools.values():
        assert tool.output_schema is not None, tool.name
        assert tool.description
    assert tools["add-tasks"].input_schema["properties"]["tasks"]["type"] == "array"


@pytest.mark.parametrize("mode", ERAS)
async def test_tools_list_follows_the_scopes_and_calls_outside_them_are_refused(mode: str) -> None:
    async with serving() as mcp:
        _, session = await mcp.account()
        reader = await mcp.key(session, ["tasks:read"])
        keys_only = await mcp.key(session, ["keys:manage"])
        async with mcp.client(reader, mode) as client:
            names = {t.name for t in (await client.list_tools()).tools}
            refused = await client.call_tool("add-tasks", {"tasks": [{"title": "no"}]})
            who = structured(await client.call_tool("whoami", {}))
            found = structured(await client.call_tool("find-tasks", {}))
        async with mcp.client(keys_only, mode) as client:
            only = {t.name for t in (await client.list_tools()).tools}
    assert names == {"whoami", "find-tasks", "get-task", "find-comments", "find-activity"}
    assert refused.is_error
    assert text(refused) == "this credential lacks the tasks:write scope"
    assert found["items"] == []
    assert who["scopes"] == ["tasks:read"]
    assert who["credential"].startswith("api_key:")
    assert only == {"whoami"}


async def test_without_a_valid_credential_the_answer_is_401_with_www_authenticate() -> None:
    async with serving() as mcp:
        body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
        missing = await mcp.http.post("/mcp", json=body)
        wrong = await mcp.http.post(
            "/mcp", json=body, headers={"Authorization": "Bearer thk_not-a-key"}
        )
        document = await mcp.http.get("/.well-known/oauth-protected-resource/mcp")
    for answer in (missing, wrong):
        assert answer.status_code == 401
        challenge = answer.headers["www-authenticate"]
        assert challenge.startswith("Bearer ")
        assert "/.well-known/oauth-protected-resource/mcp" in challenge
        assert "ratelimit-limit" in answer.headers
        assert "x-request-id" in answer.headers
    assert document.status_code == 200
    meta = document.json()
    assert meta["resource"].endswith("/mcp")
    assert meta["bearer_methods_supported"] == ["header"]
    assert set(meta["scopes_supported"]) == {
        "tasks:read",
        "tasks:write",
        "projects:read",
        "projects:write",
    }


@pytest.mark.parametrize("mode", ERAS)
async def test_add_tasks_with_an_idempotency_key_creates_once(mode: str) -> None:
    async with serving() as mcp:
        _, session = await mcp.account()
        tasks = [{"title": "write the report", "priority": 3, "labels": ["work"]}, {"title": "b"}]
        async with mcp.client(session, mode) as client:
            first = structured(
                await client.call_tool("add-tasks", {"tasks": tasks, "idempotency_key": "k-1"})
            )
            again = structured(
                await client.call_tool("add-tasks", {"tasks": tasks, "idempotency_key": "k-1"})
            )
            other = await client.call_tool(
                "add-tasks", {"tasks": [{"title": "other"}], "idempotency_key": "k-1"}
            )
            listed = structured(await client.call_tool("find-tasks", {}))
    assert first["succeeded"] == 2
    assert first["replayed"] is False
    assert again["replayed"] is True
    assert [r["task"]["id"] for r in again["results"]] == [
        r["task"]["id"] for r in first["results"]
    ]
    assert first["results"][0]["task"]["priority"] == 3
    assert other.is_error
    assert "idempotency_key was already used with a different request body." in text(other)
    assert len(listed["items"]) == 2


@pytest.mark.parametrize("mode", ERAS)
async def test_update_with_a_stale_if_match_is_refused_with_the_http_message(mode: str) -> None:
    async with serving() as mcp:
        _, session = await mcp.account()
        async with mcp.client(session, mode) as client:
            added = structured(await client.call_tool("add-tasks", {"tasks": [{"title": "a"}]}))
            task = added["results"][0]["task"]
            first = structured(
                await client.call_tool(
                    "update-tasks",
                    {
                        "patches": [
                            {"id": task["id"], "if_match": task["etag"], "changes": {"title": "b"}}
                        ]
                    },
                )
            )
            stale = await client.call_tool(
                "update-tasks",
                {
                    "patches": [
                        {"id": task["id"], "if_match": task["etag"], "changes": {"title": "c"}}
                    ]
                },
            )
        http = await mcp.http.patch(
            f"/v1/tasks/{task['id']}",
            json={"title": "d"},
            headers={"Authorization": f"Bearer {session}", "If-Match": task["etag"]},
        )
    assert first["results"][0]["task"]["title"] == "b"
    assert first["results"][0]["task"]["version"] == 2
    assert stale.is_error
    assert http.status_code == 412
    result = structured(stale)
    assert result["failed"] == 1
    assert result["results"][0]["error"]["message"] == http.json()["detail"]
    assert http.json()["detail"] in text(stale)


async def test_update_and_complete_report_each_item() -> None:
    async with serving() as mcp:
        _, session = await mcp.account()
        async with mcp.client(session) as client:
            added = structured(
                await client.call_tool("add-tasks", {"tasks": [{"title": "a"}, {"title": "b"}]})
            )
            ids = [r["task"]["id"] for r in added["results"]]
            missing = "01900000-0000-7000-8000-000000000000"
            done = await client.call_tool("complete-tasks", {"ids": [ids[0], missing]})
            bad = await client.call_tool(
                "update-tasks",
                {"patches": [{"id": ids[1], "changes": {"title": None, "priority": 9}}]},
            )
            cleared = structured(
                await client.call_tool(
                    "update-tasks",
                    {
                        "patches": [
                            {"id": ids[1], "changes": {"description": None, "labels": ["x"]}}
                        ]
                    },
                )
            )
            got = structured(await client.call_tool("get-task", {"id": ids[0]}))
            unknown = await client.call_tool("get-task", {"id": missing})
        http = await mcp.http.get(
            f"/v1/tasks/{missing}", headers={"Authorization": f"Bearer {session}"}
        )
    result = structured(done)
    assert done.is_error  # one of the two failed: the model is told
    assert result["succeeded"] == 1
    assert result["failed"] == 1
    assert result["results"][0]["task"]["status"] == "done"
    assert result["results"][0]["task"]["completed_at"] is not None
    assert result["results"][1]["error"]["message"] == http.json()["detail"]
    assert got["status"] == "done"
    fields = {e["field"] for e in structured(bad)["results"][0]["error"]["errors"]}
    assert fields == {"title", "priority"}
    assert cleared["results"][0]["task"]["labels"] == ["x"]
    assert unknown.is_error
    assert text(unknown) == http.json()["detail"]


@pytest.mark.parametrize("mode", ERAS)
async def test_find_tasks_walks_every_page_once_and_shares_cursors_with_rest(mode: str) -> None:
    async with serving() as mcp:
        _, session = await mcp.account()
        async with mcp.client(session, mode) as client:
            await client.call_tool(
                "add-tasks", {"tasks": [{"title": f"t{i}", "labels": ["l"]} for i in range(5)]}
            )
            seen: list[str] = []
            cursor = None
            while True:
                args: dict[str, object] = {"limit": 2, "labels": ["l"], "sort": "created_at"}
                if cursor:
                    args["cursor"] = cursor
                page = structured(await client.call_tool("find-tasks", args))
                seen += [t["title"] for t in page["items"]]
                cursor = page["next_cursor"]
                if cursor is None:
                    break
            first = structured(await client.call_tool("find-tasks", {"limit": 2}))
            tampered = await client.call_tool("find-tasks", {"cursor": "bm9wZQ"})
            other_query = await client.call_tool(
                "find-tasks", {"cursor": first["next_cursor"], "q": "t"}
            )
            bad_args = await client.call_tool("find-tasks", {"limit": 0, "status": "nope"})
            searched = structured(await client.call_tool("find-tasks", {"q": "T3"}))
        rest = await mcp.http.get(
            "/v1/tasks",
            params={"limit": "2", "cursor": first["next_cursor"]},
            headers={"Authorization": f"Bearer {session}"},
        )
    assert seen == [f"t{i}" for i in range(5)]
    assert rest.status_code == 200
    assert len(rest.json()["items"]) == 2
    assert tampered.is_error
    assert "cursor" in text(tampered)
    assert other_query.is_error
    assert "cursor" in text(other_query)
    assert bad_args.is_error
    assert "status: must be one of todo, in_progress, done" in text(bad_args)
    assert [t["title"] for t in searched["items"]] == ["t3"]


@pytest.mark.parametrize("mode", ERAS)
async def test_bad_arguments_and_unknown_tools_are_tool_errors(mode: str) -> None:
    async with serving() as mcp:
        _, session = await mcp.account()
        async with mcp.client(session, mode) as client:
            wrong_type = await client.call_tool("add-tasks", {"tasks": "not a list"})
            too_many = await client.call_tool("add-tasks", {"tasks": [{"title": "x"}] * 51})
            empty = await client.call_tool("complete-tasks", {"ids": []})
            unknown_field = await client.call_tool(
                "add-tasks", {"tasks": [{"title": "x", "owner": "me"}]}
            )
            unknown_tool = await client.call_tool("delete-everything", {})
            listed = structured(await client.call_tool("find-tasks", {}))
    for result in (wrong_type, too_many, empty, unknown_field, unknown_tool):
        assert result.is_error, result
        assert "Traceback" not in text(result)
    assert "1 to 50" in text(too_many)
    assert listed["items"] == []


async def test_malformed_requests_get_protocol_errors_never_a_500() -> None:
    async with serving() as mcp:
        _, session = await mcp.account()
        auth = {
            "Authorization": f"Bearer {session}",
            "Accept": "application/json, text/event-stream",
            "Content-Type": "application/json",
            "MCP-Protocol-Version": "2025-11-25",
        }
        not_json = await mcp.http.post("/mcp", content=b"{nope", headers=auth)
        not_rpc = await mcp.http.post("/mcp", content=b'{"hello": 1}', headers=auth)
        huge = await mcp.http.post("/mcp", content=b" " * (1024 * 1024 + 10) + b"{}", headers=auth)
        rebinding = await mcp.http.post(
            "/mcp", content=b"{}", headers={**auth, "Host": "evil.example"}
        )
        get = await mcp.http.get("/mcp", headers=auth)  # no server-initiated stream: stateless
    assert not_json.status_code == 400
    assert not_json.json()["error"]["code"] == -32700
    assert 400 <= not_rpc.status_code < 500
    assert huge.status_code == 413
    assert rebinding.status_code == 421
    assert get.status_code == 405
    assert get.headers["allow"] == "POST"
    for answer in (not_json, not_rpc, huge, rebinding, get):
        assert "Traceback" not in answer.text


async def test_public_host_names_come_from_the_settings() -> None:
    async with serving(
        PUBLIC_URL="https://tasks.example.com", MCP_ALLOWED_HOSTS="internal:8000"
    ) as mcp:
        _, session = await mcp.account()
        for host, status in (("tasks.example.com", 200), ("internal:8000", 200), ("x.com", 421)):
            answer = await mcp.http.post(
                "/mcp",
                json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
                headers={
                    "Authorization": f"Bearer {session}",
                    "Host": host,
                    "Accept": "application/json, text/event-stream",
                    "MCP-Protocol-Version": "2025-11-25",
                },
            )
            assert answer.status_code == status, (host, answer.text)
        document = (await mcp.http.get("/.well-known/oauth-protected-resource/mcp")).json()
    assert document["resource"] == "https://tasks.example.com/mcp"


async def test_mcp_calls_share_the_users_rate_limit() -> None:
    async with serving(RATE_LIMIT_DEFAULT="4/minute") as mcp:
        _, session = await mcp.account()
        headers = {
            "Authorization": f"Bearer {session}",
            "Accept": "application/json, text/event-stream",
            "MCP-Protocol-Version": "2025-11-25",
        }
        body = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
        answers = [await mcp.http.post("/mcp", json=body, headers=headers) for _ in range(5)]
        rest = await mcp.http.get("/v1/tasks", headers={"Authorization": f"Bearer {session}"})
    assert [a.status_code for a in answers] == [200, 200, 200, 200, 429]
    assert int(answers[-1].headers["retry-after"]) >= 1
    assert answers[0].headers["ratelimit-limit"] == "4"
    assert rest.status_code == 429


async def test_the_service_token_acts_for_a_user_and_the_audit_line_says_mcp(
    stderr_logs: Callable[[], str],
) -> None:
    async with serving() as mcp:
        user_id, _ = await mcp.account()
        async with mcp.client(SERVICE_TOKEN, headers={"X-Acting-User": user_id}) as client:
            who = structured(await client.call_tool("whoami", {}))
            await client.call_tool("add-tasks", {"tasks": [{"title": "by the service"}]})
        nobody = await mcp.http.post(
            "/mcp",
            json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
            headers={"Authorization": f"Bearer {SERVICE_TOKEN}", "X-Acting-User": "nobody"},
        )
    assert nobody.status_code == 401
    assert who["user"]["id"] == user_id
    assert who["actor"] == "service"
    lines = [line for line in stderr_logs().splitlines() if '"task.created"' in line]
    assert len(lines) == 1
    assert '"via":"mcp"' in lines[0]
    assert '"actor":"service"' in lines[0]
    assert '"route":"/mcp"' in lines[0]


async def test_delete_and_restore_go_through_the_trash_and_report_each_item() -> None:
    async with serving() as mcp:
        _, session = await mcp.account()
        auth = {"Authorization": f"Bearer {session}"}
        async with mcp.client(session) as client:
            added = structured(
                await client.call_tool("add-tasks", {"tasks": [{"title": "a"}, {"title": "b"}]})
            )
            a, b = (r["task"] for r in added["results"])
            missing = "01900000-0000-7000-8000-000000000000"
            stale = f'"{b["id"]}.0"'
            deleted = await client.call_tool(
                "delete-tasks",
                {
                    "tasks": [
                        {"id": a["id"], "if_match": a["etag"]},
                        {"id": b["id"], "if_match": stale},
                    ]
                },
            )
            gone = await mcp.http.get(f"/v1/tasks/{a['id']}", headers=auth)
            restored = await client.call_tool("restore-tasks", {"ids": [a["id"], missing]})
            back = await mcp.http.get(f"/v1/tasks/{a['id']}", headers=auth)
            empty = await client.call_tool("delete-tasks", {"tasks": []})
        http = await mcp.http.post(f"/v1/trash/{missing}/restore", headers=auth)
    result = structured(deleted)
    assert deleted.is_error  # one item failed
    assert (result["succeeded"], result["failed"]) == (1, 1)
    assert result["results"][0] == {"index": 0, "id": a["id"], "ok": True}
    assert "is stale" in result["results"][1]["error"]["message"]
    assert gone.status_code == 404
    again = structured(restored)
    assert again["results"][0]["task"]["version"] == 3
    assert again["results"][1]["error"]["message"] == http.json()["detail"]
    assert back.status_code == 200
    assert empty.is_error


@pytest.mark.parametrize("mode", ERAS)
async def test_each_answer_carries_its_structured_content_as_compact_json_text(mode: str) -> None:
    """Clients that read only the content blocks get the same object (the spec's backwards
    compatibility), written without indentation; the structured content fits the tool's
    published output schema."""
    async with serving() as mcp:
        _, session = await mcp.account()
        async with mcp.client(session, mode) as client:
            schemas = {t.name: t.output_schema for t in (await client.list_tools()).tools}
            added = await client.call_tool(
                "add-tasks",
                {"tasks": [{"title": "a", "labels": ["x"], "due_at": "2030-01-02T03:04:05Z"}]},
            )
            task_id = structured(added)["results"][0]["task"]["id"]
            answers = {
                "add-tasks": added,
                "find-tasks": await client.call_tool("find-tasks", {}),
                "get-task": await client.call_tool("get-task", {"id": task_id}),
                "whoami": await client.call_tool("whoami", {}),
                "find-projects": await client.call_tool("find-projects", {}),
                "find-activity": await client.call_tool("find-activity", {"task_id": task_id}),
            }
    for name, result in answers.items():
        assert not result.is_error, (name, result)
        compact = json.dumps(structured(result), separators=(",", ":"), ensure_ascii=False)
        blocks = [c.model_dump(exclude_none=True) for c in result.content]
        assert blocks == [{"type": "text", "text": compact}], name
        jsonschema.validate(structured(result), schemas[name])
    (task,) = structured(answers["find-tasks"])["items"]
    assert task["due_at"] == "2030-01-02T03:04:05Z"
    assert task["labels"] == ["x"]
