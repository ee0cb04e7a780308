"""The bench's batch row: its body is a batch Taskhub accepts (100 creates, 201 each), wrk has a
mode for it, and the row compares tasks per second (median of the rounds' ratios) to the goal."""

from __future__ import annotations

import json

from bench.run import (
    BATCH_GOAL,
    BATCH_SIZE,
    LUA,
    AppRun,
    Measurement,
    batch_body,
    batch_row,
    render_batch,
)
from tests.unit.http.conftest import Api


def measured(rps: float, errors: int = 0) -> Measurement:
    return Measurement(100, 10.0, rps, 5.0, 9.0, {"status": errors} if errors else {})


def taskhub_run(round_no: int, post_rps: float, batch_rps: float, errors: int = 0) -> AppRun:
    results = {"post": measured(post_rps), "batch": measured(batch_rps, errors)}
    return AppRun("taskhub", round_no, 1.0, [60.0], 0.0, results)


def test_the_bench_batch_is_accepted_as_100_creates(api: Api) -> None:
    owner = api.account()
    project = api.create_task(owner.token)["project_id"]
    body = batch_body(project)
    assert len(json.loads(body)["operations"]) == BATCH_SIZE == 100
    response = api.client.post(
        "/v1/tasks/batch",
        content=body,
        headers={**owner.auth, "Content-Type": "application/json"},
    )
    assert response.status_code == 200, response.text
    assert [r["status"] for r in response.json()["results"]] == [201] * BATCH_SIZE


def test_wrk_posts_the_batch_to_the_batch_route() -> None:
    script = LUA.read_text()
    assert 'mode == "batch"' in script
    assert 'prefix .. "/batch"' in script


def test_the_row_is_the_median_of_the_rounds_tasks_per_second_ratios() -> None:
    ceiling = AppRun("ceiling", 1, 1.0, [30.0], 0.0, {"post": measured(5000)})
    runs = [
        ceiling,
        taskhub_run(1, post_rps=1000, batch_rps=120),  # 12x
        taskhub_run(2, post_rps=1000, batch_rps=90),  # 9x
        taskhub_run(3, post_rps=800, batch_rps=100),  # 12.5x
    ]
    row = batch_row(runs)
    assert row is not None
    assert row["round_ratios"] == [12.0, 9.0, 12.5]
    assert row["ratio"] == 12.0
    assert row["batch_tasks_per_s"] == 10000
    assert row["single_tasks_per_s"] == 1000
    lines, missed = render_batch(row)
    assert missed == []
    assert "goal met" in lines[-1]
    assert f">= {BATCH_GOAL:.0f}x" in lines[-1]


def test_a_row_below_the_goal_or_with_errors_says_so() -> None:
    slow = batch_row([taskhub_run(1, post_rps=1000, batch_rps=50)])
    assert slow is not None
    lines, missed = render_batch(slow)
    assert "BELOW GOAL" in lines[-1]
    assert len(missed) == 1
    void = batch_row([taskhub_run(1, post_rps=1000, batch_rps=500, errors=3)])
    assert "VOID: 3 errors" in render_batch(void)[0][-1]
    assert batch_row([]) is None
    assert render_batch(None) == ([], [])
