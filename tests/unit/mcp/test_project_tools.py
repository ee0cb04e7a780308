"""The project and comment tools: scope filtering, a restricted key's reach, refusals with the
HTTP API's messages, and comment pages read with the HTTP list's cursors."""

from __future__ import annotations

import pytest

from tests.unit.mcp.conftest import ERAS, Mcp, serving, structured, text

PROJECT_TOOLS = {"find-projects", "add-project"}
COMMENT_TOOLS = {"add-comment", "find-comments", "find-activity"}


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _project(mcp: Mcp, session: str, name: str) -> str:
    made = await mcp.http.post("/v1/projects", json={"name": name}, headers=_auth(session))
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


async def _restricted_key(mcp: Mcp, session: str, scopes: list[str], project_id: str) -> str:
    issued = await mcp.http.post(
        "/v1/api-keys",
        json={"name": "narrow", "scopes": scopes, "project_ids": [project_id]},
        headers=_auth(session),
    )
    assert issued.status_code == 201, issued.text
    return str(issued.json()["key"])


async def test_tools_list_shows_the_new_tools_by_scope() -> None:
    async with serving() as mcp:
        _, session = await mcp.account()
        keys = {
            "projects:read": await mcp.key(session, ["projects:read"]),
            "projects:write": await mcp.key(session, ["projects:write"]),
            "tasks:read": await mcp.key(session, ["tasks:read"]),
            "tasks:write": await mcp.key(session, ["tasks:write"]),
        }
        seen: dict[str, set[str]] = {}
        for scope, key in keys.items():
            async with mcp.client(key) as client:
                names = {t.name for t in (await client.list_tools()).tools}
            seen[scope] = names & (PROJECT_TOOLS | COMMENT_TOOLS)
        async with mcp.client(session) as client:
            tools = {t.name: t for t in (await client.list_tools()).tools}
    assert seen == {
        "projects:read": {"find-projects"},
        "projects:write": {"add-project"},
        "tasks:read": {"find-comments", "find-activity"},
        "tasks:write": {"add-comment"},
    }
    hints = {
        name: (
            tools[name].annotations.read_only_hint,  # type: ignore[union-attr]
            tools[name].annotations.idempotent_hint,  # type: ignore[union-attr]
        )
        for name in PROJECT_TOOLS | COMMENT_TOOLS
    }
    assert hints == {
        "find-projects": (True, True),
        "find-comments": (True, True),
        "find-activity": (True, True),
        "add-project": (False, False),
        "add-comment": (False, False),
    }
    for name in PROJECT_TOOLS | COMMENT_TOOLS:
        assert tools[name].output_schema is not None, name


@pytest.mark.parametrize("mode", ERAS)
async def test_add_project_then_find_it_with_the_owner_role(mode: str) -> None:
    async with serving() as mcp:
        _, session = await mcp.account()
        async with mcp.client(session, mode) as client:
            made = structured(
                await client.call_tool("add-project", {"name": "  Garden ", "description": "d"})
            )
            empty = await client.call_tool("add-project", {"name": "   "})
            found = structured(await client.call_tool("find-projects", {}))
        http = await mcp.http.get(f"/v1/projects/{made['id']}", headers=_auth(session))
    assert made["name"] == "Garden"
    assert made["role"] == "owner"
    assert made["inbox"] is False
    assert made["etag"] == http.headers["etag"]
    assert http.json()["name"] == "Garden"
    assert [(p["inbox"], p["role"]) for p in found["items"]] == [(True, "owner"), (False, "owner")]
    assert found["items"][1]["id"] == made["id"]
    assert empty.is_error
    assert "name" in text(empty)


async def test_a_restricted_key_finds_only_its_project_and_may_not_add_one() -> None:
    async with serving() as mcp:
        _, session = await mcp.account()
        mine = await _project(mcp, session, "Reached")
        await _project(mcp, session, "Elsewhere")
        scopes = ["projects:read", "projects:write"]
        key = await _restricted_key(mcp, session, scopes, mine)
        async with mcp.client(key) as client:
            found = structured(await client.call_tool("find-projects", {}))
            refused = await client.call_tool("add-project", {"name": "Sneaky"})
        http = await mcp.http.post("/v1/projects", json={"name": "Sneaky"}, headers=_auth(key))
        everything = await mcp.http.get("/v1/projects", headers=_auth(session))
    assert [p["id"] for p in found["items"]] == [mine]
    assert refused.is_error
    assert http.status_code == 403
    assert text(refused) == http.json()["detail"]
    assert "Sneaky" not in {p["name"] for p in everything.json()["items"]}


async def test_a_viewers_comment_is_refused_with_the_http_message() -> None:
    async with serving() as mcp:
        _, owner = await mcp.account()
        viewer_id, viewer = await mcp.account()
        project = await _project(mcp, owner, "Shared")
        viewer_email = (await mcp.http.get("/v1/users/me", headers=_auth(viewer))).json()["email"]
        added = await mcp.http.post(
            f"/v1/projects/{project}/members",
            json={"email": viewer_email, "role": "viewer"},
            headers=_auth(owner),
        )
        assert added.status_code == 201, added.text
        task = await mcp.http.post(
            "/v1/tasks", json={"title": "t", "project_id": project}, headers=_auth(owner)
        )
        task_id = task.json()["id"]
        async with mcp.client(owner) as client:
            written = structured(
                await client.call_tool("add-comment", {"task_id": task_id, "body": "hello"})
            )
        async with mcp.client(viewer) as client:
            refused = await client.call_tool("add-comment", {"task_id": task_id, "body": "me"})
            read = structured(await client.call_tool("find-comments", {"task_id": task_id}))
        http = await mcp.http.post(
            f"/v1/tasks/{task_id}/comments", json={"body": "me"}, headers=_auth(viewer)
        )
    assert written["body"] == "hello"
    assert written["task_id"] == task_id
    assert refused.is_error
    assert http.status_code == 403
    assert text(refused) == http.json()["detail"]
    assert [c["body"] for c in read["items"]] == ["hello"]
    assert viewer_id not in {c["author_id"] for c in read["items"]}


@pytest.mark.parametrize("mode", ERAS)
async def test_find_comments_walks_every_page_and_shares_cursors_with_rest(mode: str) -> None:
    async with serving() as mcp:
        _, session = await mcp.account()
        async with mcp.client(session, mode) as client:
            added = structured(
                await client.call_tool("add-tasks", {"tasks": [{"title": "a"}, {"title": "b"}]})
            )
            task_id, other_id = (r["task"]["id"] for r in added["results"])
            for i in range(5):
                await client.call_tool("add-comment", {"task_id": task_id, "body": f"c{i}"})
            seen: list[str] = []
            cursor = None
            while True:
                args: dict[str, object] = {"task_id": task_id, "limit": 2}
                if cursor:
                    args["cursor"] = cursor
                page = structured(await client.call_tool("find-comments", args))
                seen += [c["body"] for c in page["items"]]
                cursor = page["next_cursor"]
                if cursor is None:
                    break
            first = structured(
                await client.call_tool("find-comments", {"task_id": task_id, "limit": 2})
            )
            other_task = await client.call_tool(
                "find-comments", {"task_id": other_id, "cursor": first["next_cursor"]}
            )
            tampered = await client.call_tool(
                "find-comments", {"task_id": task_id, "cursor": "bm9wZQ"}
            )
            too_many = await client.call_tool("find-comments", {"task_id": task_id, "limit": 201})
            unknown = await client.call_tool(
                "find-comments", {"task_id": "00000000-0000-7000-8000-000000000000"}
            )
        rest = await mcp.http.get(
            f"/v1/tasks/{task_id}/comments",
            params={"limit": "2", "cursor": first["next_cursor"]},
            headers=_auth(session),
        )
    assert seen == [f"c{i}" for i in range(5)]
    assert [c["body"] for c in rest.json()["items"]] == ["c2", "c3"]
    for refused in (other_task, tampered):
        assert refused.is_error
        assert "- cursor: " in text(refused)
    assert "is not a cursor of this list" in text(other_task)
    assert "is malformed or was tampered with" in text(tampered)
    assert too_many.is_error
    assert "limit: must be between 1 and 200" in text(too_many)
    assert unknown.is_error
    assert "not found" in text(unknown)


async def test_find_activity_reads_a_tasks_and_a_projects_events_made_over_mcp() -> None:
    async with serving() as mcp:
        _, owner = await mcp.account()
        project = await _project(mcp, owner, "Shared")
        task = await mcp.http.post(
            "/v1/tasks", json={"title": "t", "project_id": project}, headers=_auth(owner)
        )
        task_id = task.json()["id"]
        async with mcp.client(owner) as client:
            await client.call_tool("add-comment", {"task_id": task_id, "body": "hello"})
            of_task = structured(await client.call_tool("find-activity", {"task_id": task_id}))
            first = structured(
                await client.call_tool("find-activity", {"project_id": project, "limit": 2})
            )
            rest = structured(
                await client.call_tool(
                    "find-activity", {"project_id": project, "cursor": first["next_cursor"]}
                )
            )
            neither = await client.call_tool("find-activity", {})
        http = await mcp.http.get(f"/v1/projects/{project}/activity", headers=_auth(owner))
    assert [e["type"] for e in of_task["items"]] == ["task.created"]
    assert of_task["next_cursor"] is None
    events = first["items"] + rest["items"]
    assert events == http.json()["items"]
    assert [e["type"] for e in events] == ["project.created", "task.created", "comment.created"]
    assert events[0]["actor"]["via"] == "http"
    assert events[2]["actor"]["via"] == "mcp"
    assert neither.is_error
