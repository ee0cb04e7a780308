"""The bench's MCP rows: the tools/call bodies wrk sends are calls Taskhub answers with a
successful tool result (and the batch they are compared with is accepted), wrk has a mode that
posts them to /mcp and counts tool errors, and the rows compare each Taskhub round's pair
(median of the rounds' ratios) and say when a figure is void."""

from __future__ import annotations

import json

from bench.run import (
    LUA,
    MCP_ADD_SIZE,
    MCP_FIND_GOAL,
    MCP_PAGE,
    MCP_PROTOCOL,
    AppRun,
    Measurement,
    batch_body,
    mcp_add_body,
    mcp_add_row,
    mcp_find_body,
    mcp_find_row,
    render_mcp,
)
from tests.unit.mcp.conftest import serving

RAW = {
    "Accept": "application/json, text/event-stream",
    "Content-Type": "application/json",
    "MCP-Protocol-Version": MCP_PROTOCOL,
}


async def test_the_bench_bodies_are_successful_calls_and_an_accepted_batch() -> None:
    async with serving() as mcp:
        _, session = await mcp.account()
        key = await mcp.key(session, ["tasks:read", "tasks:write"])
        headers = {**RAW, "Authorization": f"Bearer {key}"}
        made = await mcp.http.post(
            "/v1/tasks", json={"title": "somewhere"}, headers={"Authorization": f"Bearer {key}"}
        )
        project = made.json()["project_id"]
        added = await mcp.http.post("/mcp", content=mcp_add_body(project), headers=headers)
        found = await mcp.http.post("/mcp", content=mcp_find_body(), headers=headers)
        listed = await mcp.http.get(
            f"/v1/tasks?limit={MCP_PAGE}", headers={"Authorization": f"Bearer {key}"}
        )
        batch = await mcp.http.post(
            "/v1/tasks/batch",
            content=batch_body(project, MCP_ADD_SIZE, atomic=False),
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        )
    assert added.status_code == 200, added.text
    assert added.text.startswith('{"jsonrpc":"2.0","id":1,"result":')  # what tasks.lua checks
    result = added.json()["result"]
    assert not result.get("isError")
    assert result["structuredContent"]["succeeded"] == MCP_ADD_SIZE == 50
    page = found.json()["result"]
    assert not page.get("isError")
    ids = [t["id"] for t in page["structuredContent"]["items"]]
    assert len(ids) == MCP_PAGE
    assert ids == [t["id"] for t in listed.json()["items"]]
    assert batch.status_code == 200, batch.text
    assert json.loads(batch_body(project, MCP_ADD_SIZE, atomic=False))["atomic"] is False
    assert [r["status"] for r in batch.json()["results"]] == [201] * MCP_ADD_SIZE


async def test_a_failed_call_is_marked_as_tasks_lua_looks_for_it() -> None:
    async with serving() as mcp:
        _, session = await mcp.account()
        headers = {**RAW, "Authorization": f"Bearer {session}"}
        bad_project = mcp_add_body("00000000-0000-7000-8000-000000000000")
        refused = await mcp.http.post("/mcp", content=bad_project, headers=headers)
    assert refused.status_code == 200
    assert '"isError":true' in refused.text


def test_wrk_posts_tool_calls_to_mcp_and_counts_tool_errors() -> None:
    script = LUA.read_text()
    assert 'mode == "mcp"' in script
    assert 'wrk.format("POST", "/mcp"' in script
    assert 'headers["MCP-Protocol-Version"] = mcp_protocol' in script
    assert "'\"isError\":true'" in script
    assert "errors_tool" in script


def measured(rps: float, errors: int = 0, cpu_s: float = 0.0) -> Measurement:
    failed = {"tool": errors} if errors else {}
    return Measurement(100, 10.0, rps, 5.0, 9.0, failed, app_cpu_s=cpu_s)


def taskhub_run(round_no: int, **rps: float) -> AppRun:
    results = {mode.replace("_", "-"): measured(value) for mode, value in rps.items()}
    return AppRun("taskhub", round_no, 1.0, [60.0], 0.0, results)


def test_find_tasks_row_is_the_median_of_the_rounds_ratios_against_the_list() -> None:
    ceiling = AppRun("ceiling", 1, 1.0, [30.0], 0.0, {"list": measured(5000)})
    runs = [
        ceiling,
        taskhub_run(1, list=1000, mcp_find=600),  # 0.6
        taskhub_run(2, list=1000, mcp_find=400),  # 0.4
        taskhub_run(3, list=800, mcp_find=440),  # 0.55
    ]
    row = mcp_find_row(runs)
    assert row is not None
    assert row["round_ratios"] == [0.6, 0.4, 0.55]
    assert row["ratio"] == 0.55
    assert (row["mcp"]["rps"], row["http"]["rps"]) == (440, 1000)
    assert row["goal"] == MCP_FIND_GOAL == 0.5
    lines, missed = render_mcp(row, None)
    assert missed == []
    assert "goal met" in lines[-1]
    assert "440 req/s" in lines[-1]
    assert "**0.55**" in lines[-1]
    assert row["cpu_ratio"] is None  # no CPU measured


def test_the_rows_cross_check_in_requests_per_cpu_second() -> None:
    results = {"list": measured(1000, cpu_s=1.0), "mcp-find": measured(300, cpu_s=4.0)}
    row = mcp_find_row([AppRun("taskhub", 1, 1.0, [], 0.0, results)])
    assert row is not None
    assert (row["mcp"]["requests_per_cpu_s"], row["http"]["requests_per_cpu_s"]) == (25, 100)
    assert row["cpu_ratio"] == 0.25
    assert render_mcp(row, None)[0][-1].endswith("| 0.25 |")


def test_add_tasks_row_is_in_tasks_per_second_with_no_goal() -> None:
    runs = [taskhub_run(1, batch50=20, mcp_add=10), taskhub_run(2, batch50=30, mcp_add=12)]
    row = mcp_add_row(runs, connections=8)
    assert row is not None
    assert row["round_ratios"] == [0.5, 0.4]
    assert row["ratio"] == 0.45
    assert (row["mcp"]["tasks_per_s"], row["http"]["tasks_per_s"]) == (550, 1250)
    lines, missed = render_mcp(None, row)
    assert missed == []
    table_row = next(line for line in lines if line.startswith(f"| {row['endpoint']}"))
    assert "550 tasks/s" in table_row
    assert "1250 tasks/s" in table_row
    assert "no goal" in table_row
    assert "wrk -c8" in lines[-1]


def test_a_row_below_its_goal_with_errors_or_without_requests_says_so() -> None:
    slow = mcp_find_row([taskhub_run(1, list=1000, mcp_find=300)])
    lines, missed = render_mcp(slow, None)
    assert "BELOW GOAL" in lines[-1]
    assert len(missed) == 1
    results = {"list": measured(9), "mcp-find": measured(9, errors=4)}
    failing = [AppRun("taskhub", 1, 1.0, [], 0.0, results)]
    assert "VOID: 4 errors" in render_mcp(mcp_find_row(failing), None)[0][-1]
    nothing = mcp_add_row([taskhub_run(1, batch50=0, mcp_add=0)], connections=8)
    assert nothing is not None
    assert nothing["ratio"] is None
    lines, missed = render_mcp(None, nothing)
    assert "VOID: no request completed" in lines[-3]
    assert missed == []
    assert mcp_find_row([taskhub_run(1, list=1000)]) is None
    assert render_mcp(None, None) == ([], [])
