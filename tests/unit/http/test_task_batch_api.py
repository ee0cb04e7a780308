"""POST /v1/tasks/batch over HTTP on the in-memory app: results, atomic rollback, per-operation
answers, envelope errors, If-Match, the cap, idempotency and the rate-limit cost."""

from __future__ import annotations

from typing import Any

import httpx

from tests.unit.http.conftest import Account, Api, ApiFactory
from tests.unit.http.test_identity_api import problem

URL = "/v1/tasks/batch"


def batch(api: Api, who: Account, operations: list[Any], **extra: Any) -> httpx.Response:
    headers = {**who.auth, **extra.pop("headers", {})}
    return api.client.post(URL, json={"operations": operations, **extra}, headers=headers)


def create(**data: Any) -> dict[str, Any]:
    return {"op": "create", "data": {"title": "a task", **data}}


def titles(api: Api) -> set[str]:
    """Titles of the live tasks (a deleted task keeps its row, marked in the trash)."""
    trash = api.rows("trash")
    return {task.title for task in api.rows("tasks").values() if task.id not in trash}


def etag(task: dict[str, Any]) -> str:
    return f'"{task["id"]}.{task["version"]}"'


def test_every_operation_answers_in_order_with_the_single_status(api: Api, alice: Account) -> None:
    kept = api.create_task(alice.token, title="to update")
    gone = api.create_task(alice.token, title="to delete")
    response = batch(
        api,
        alice,
        [
            create(title="new", labels=["x", "x"]),
            {"op": "update", "id": kept["id"], "data": {"status": "done"}, "if_match": etag(kept)},
            {"op": "delete", "id": gone["id"]},
        ],
    )
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [(r["index"], r["status"]) for r in results] == [(0, 201), (1, 200), (2, 204)]
    assert results[0]["task"]["title"] == "new"
    assert results[0]["task"]["labels"] == ["x"]
    assert results[1]["task"]["status"] == "done"
    assert results[1]["task"]["version"] == 2
    assert "task" not in results[2]
    assert "problem" not in results[2]
    assert titles(api) == {"new", "to update"}
    assert api.client.get(f"/v1/tasks/{gone['id']}", headers=alice.auth).status_code == 404


def test_an_atomic_batch_that_fails_changes_nothing(api: Api, alice: Account) -> None:
    kept = api.create_task(alice.token, title="before")
    response = batch(
        api,
        alice,
        [
            create(title="first"),
            {"op": "update", "id": kept["id"], "data": {"title": "changed"}},
            create(title="   "),
            create(title="never run"),
        ],
    )
    body = problem(response, 422)
    assert body["operation"] == 2
    assert body["type"].endswith("/validation-failed")
    assert [e["field"] for e in body["errors"]] == ["operations[2].data.title"]
    assert body["request_id"]
    assert titles(api) == {"before"}
    again = api.client.get(f"/v1/tasks/{kept['id']}", headers=alice.auth).json()
    assert again["version"] == 1


def test_an_atomic_failure_answers_the_operations_own_status(
    api: Api, alice: Account, bob: Account
) -> None:
    bobs = api.create_task(bob.token)
    mine = api.create_task(alice.token)
    not_found = problem(batch(api, alice, [create(), {"op": "delete", "id": bobs["id"]}]), 404)
    assert not_found["operation"] == 1
    stale = {"op": "update", "id": mine["id"], "data": {"priority": 2}, "if_match": '"x.9"'}
    precondition = problem(batch(api, alice, [create(), stale]), 412)
    assert precondition["operation"] == 1
    assert precondition["type"].endswith("/precondition-failed")
    assert len(api.rows("tasks")) == 2


def test_not_atomic_each_operation_stands_alone(api: Api, alice: Account) -> None:
    task = api.create_task(alice.token, title="v1")
    response = batch(
        api,
        alice,
        [
            create(title="made"),
            {"op": "update", "id": task["id"], "data": {"title": "v2"}, "if_match": '"nope"'},
            create(priority="high"),
            {"op": "update", "id": task["id"], "data": {"title": "v2"}, "if_match": etag(task)},
            {"op": "delete", "id": "not-a-uuid"},
        ],
        atomic=False,
    )
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["status"] for r in results] == [201, 412, 422, 200, 404]
    wrong_type = results[2]["problem"]
    assert wrong_type["status"] == 422
    assert wrong_type["type"].endswith("/validation-failed")
    assert [e["field"] for e in wrong_type["errors"]] == ["operations[2].data.priority"]
    assert results[1]["problem"]["type"].endswith("/precondition-failed")
    assert titles(api) == {"made", "v2"}


def test_a_bad_data_in_an_atomic_batch_fails_it_naming_the_operation(
    api: Api, alice: Account
) -> None:
    body = problem(batch(api, alice, [create(title="ok"), create(id="x")]), 422)
    assert body["operation"] == 1
    assert [e["field"] for e in body["errors"]] == ["operations[1].data.id"]
    not_an_object = problem(batch(api, alice, [{"op": "create", "data": [1]}]), 422)
    assert [e["field"] for e in not_an_object["errors"]] == ["operations[0].data"]
    assert titles(api) == set()


def test_the_envelope_must_fit_or_nothing_runs(api: Api, alice: Account) -> None:
    cases: list[tuple[Any, str]] = [
        ({"operations": []}, "operations"),
        ({"operations": [create()] * 101}, "operations"),
        ({"operations": [create(), {"op": "rename", "id": "x"}]}, "operations[1].op"),
        ({"operations": [{"op": "update", "data": {}}]}, "operations[0].id"),
        ({"operations": [{"op": "create"}]}, "operations[0].data"),
        ({"operations": [{"data": {"title": "x"}}]}, "operations[0].op"),
        ({"operations": [create()], "atomic": "yes"}, "atomic"),
        ({"operations": [create()], "extra": 1}, "extra"),
        ({}, "operations"),
    ]
    for body, field in cases:
        response = api.client.post(URL, json=body, headers=alice.auth)
        answer = problem(response, 422)
        assert [e["field"] for e in answer["errors"]] == [field], (body, answer)
        assert "operation" not in answer
    bad_json = api.client.post(
        URL, content=b"{nope", headers={**alice.auth, "Content-Type": "application/json"}
    )
    problem(bad_json, 400)
    assert titles(api) == set()


def test_the_cap_is_exact_inside_a_batch(make_api: ApiFactory) -> None:
    api = make_api(MAX_TASKS_PER_USER="3")
    alice = api.account()
    api.create_task(alice.token, title="held")
    full = problem(batch(api, alice, [create(title=f"t{n}") for n in range(3)]), 409)
    assert full["operation"] == 2
    assert full["type"].endswith("/limit-reached")
    assert titles(api) == {"held"}
    response = batch(api, alice, [create(title=f"t{n}") for n in range(3)], atomic=False)
    assert [r["status"] for r in response.json()["results"]] == [201, 201, 409]
    assert titles(api) == {"held", "t0", "t1"}


def test_a_delete_in_the_batch_keeps_its_place_under_the_cap(make_api: ApiFactory) -> None:
    """A deleted task waits in the trash and still counts: the later create is refused and the
    atomic batch changes nothing."""
    api = make_api(MAX_TASKS_PER_USER="1")
    alice = api.account()
    old = api.create_task(alice.token, title="old")
    full = problem(batch(api, alice, [{"op": "delete", "id": old["id"]}, create(title="new")]), 409)
    assert full["operation"] == 1
    assert full["type"].endswith("/limit-reached")
    assert titles(api) == {"old"}
    assert not api.rows("trash")


def test_later_operations_see_earlier_ones(api: Api, alice: Account) -> None:
    parent = api.create_task(alice.token, title="parent")
    response = batch(
        api,
        alice,
        [
            create(title="child", parent_id=parent["id"]),
            {"op": "delete", "id": parent["id"]},
            create(title="orphan", parent_id=parent["id"]),
        ],
        atomic=False,
    )
    results = response.json()["results"]
    assert [r["status"] for r in results] == [201, 204, 422]
    assert [e["field"] for e in results[2]["problem"]["errors"]] == ["operations[2].data.parent_id"]
    assert titles(api) == set()  # the child went with its parent


def test_a_viewer_and_a_read_only_key_are_refused(api: Api, alice: Account) -> None:
    reader = api.key(alice.token, ["tasks:read"])
    response = api.client.post(
        URL, json={"operations": [create()]}, headers={"Authorization": f"Bearer {reader}"}
    )
    problem(response, 403)
    problem(api.client.post(URL, json={"operations": [create()]}), 401)
    assert titles(api) == set()


def test_idempotency_key_replays_the_first_answer(api: Api, alice: Account) -> None:
    key = {"Idempotency-Key": "batch-1"}
    first = batch(api, alice, [create(title="once"), create(title="twice")], headers=key)
    assert first.status_code == 200, first.text
    again = batch(api, alice, [create(title="once"), create(title="twice")], headers=key)
    assert again.status_code == 200
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert len(api.rows("tasks")) == 2
    other = batch(api, alice, [create(title="other")], headers=key)
    assert [e["field"] for e in problem(other, 422)["errors"]] == ["Idempotency-Key"]
    # A failed atomic batch keeps nothing: its retry runs again.
    failing = {"Idempotency-Key": "batch-2"}
    problem(batch(api, alice, [create(title=" ")], headers=failing), 422)
    problem(batch(api, alice, [create(title=" ")], headers=failing), 422)
    assert len(api.rows("tasks")) == 2


def test_a_batch_counts_one_plus_a_tenth_of_its_operations(make_api: ApiFactory) -> None:
    api = make_api(RATE_LIMIT_DEFAULT="30/minute")
    alice = api.account()
    single = api.client.get("/v1/tasks", headers=alice.auth)
    before = int(single.headers["ratelimit-remaining"])
    response = batch(api, alice, [create(title=f"t{n}") for n in range(11)])
    assert response.status_code == 200, response.text
    assert int(response.headers["ratelimit-remaining"]) == before - 3  # 1 + ceil(11 / 10)
    one = batch(api, alice, [create(title="one")])
    assert int(one.headers["ratelimit-remaining"]) == before - 5  # 1 + ceil(1 / 10)
    # The budget left cannot take 1 + 10: refused, nothing runs, one request is counted.
    left = int(one.headers["ratelimit-remaining"])
    while left > 6:
        left = int(api.client.get("/v1/tasks", headers=alice.auth).headers["ratelimit-remaining"])
    refused = batch(api, alice, [create(title=f"x{n}") for n in range(100)])
    body = problem(refused, 429)
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.headers["ratelimit-remaining"] == "0"
    assert body["type"].endswith("/rate-limited")
    assert not any(t.startswith("x") for t in titles(api))


def test_the_openapi_text_documents_the_batch(api: Api) -> None:
    spec = api.client.get("/openapi.json").json()
    operation = spec["paths"]["/v1/tasks/batch"]["post"]
    assert {"200", "400", "401", "403", "404", "409", "412", "413", "415", "422", "429"} <= set(
        operation["responses"]
    )
    assert any(p.get("name") == "Idempotency-Key" for p in operation["parameters"])
    body = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert body.endswith("/TaskBatch")
    schemas = spec["components"]["schemas"]
    assert schemas["BatchCreate"]["properties"]["data"]["$ref"].endswith("/TaskCreate")
    assert schemas["BatchUpdate"]["properties"]["data"]["$ref"].endswith("/TaskPatch")
    assert "TaskCreate" in schemas
    assert "TaskPatch" in schemas


def test_the_batch_problems_document_the_operation_member(api: Api) -> None:
    spec = api.client.get("/openapi.json").json()
    responses = spec["paths"]["/v1/tasks/batch"]["post"]["responses"]
    for status in ("403", "404", "409", "412", "422"):
        schema = responses[status]["content"]["application/problem+json"]["schema"]
        assert schema["$ref"].endswith("/OperationProblem"), status
    problem = spec["components"]["schemas"]["OperationProblem"]
    assert "operation" in problem["properties"]
    assert "operation" not in problem.get("required", [])
    result = spec["components"]["schemas"]["BatchResult"]["properties"]
    assert "#/components/schemas/TaskOut" in str(result["task"])
    assert "null" not in str(result["task"])  # absent, never null
    assert "#/components/schemas/Problem'" in str(result["problem"])
