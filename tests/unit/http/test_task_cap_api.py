"""The per-account task cap (MAX_TASKS_PER_USER) over HTTP, on the in-memory app."""

from __future__ import annotations

from typing import Any

from tests.unit.http.conftest import Account, Api, ApiFactory, bearer
from tests.unit.http.test_identity_api import problem

LIMIT_REACHED = "https://taskhub.dev/problems/limit-reached"


def post(api: Api, auth: dict[str, str], body: Any, **headers: str) -> Any:
    return api.client.post("/v1/tasks", json=body, headers={**auth, **headers})


def held(api: Api, who: Account) -> set[str]:
    response = api.client.get("/v1/tasks", params={"limit": "200"}, headers=who.auth)
    assert response.status_code == 200, response.text
    return {task["id"] for task in response.json()["items"]}


def test_a_create_past_the_cap_is_409_limit_reached_and_creates_nothing(
    make_api: ApiFactory,
) -> None:
    api = make_api(MAX_TASKS_PER_USER="2")
    alice = api.account()
    made = {api.create_task(alice.token, title=f"t{n}")["id"] for n in range(2)}

    body = problem(post(api, alice.auth, {"title": "one too many"}), 409)
    assert body["type"] == LIMIT_REACHED
    assert body["title"] == "Conflict"
    assert "already holds 2 tasks" in body["detail"]
    assert body["request_id"]
    assert held(api, alice) == made
    assert len(api.rows("tasks")) == 2

    # Per account, whatever the credential: a key of Alice's counts against her cap too.
    key = api.key(alice.token, ["tasks:write"])
    assert problem(post(api, bearer(key), {"title": "by key"}), 409)["type"] == LIMIT_REACHED
    bob = api.account()
    api.create_task(bob.token)


def test_bad_input_at_the_cap_gets_its_own_answer_and_changes_nothing(make_api: ApiFactory) -> None:
    api = make_api(MAX_TASKS_PER_USER="1")
    alice = api.account()
    only = api.create_task(alice.token)["id"]
    body = problem(post(api, alice.auth, {"title": "   ", "labels": ["ok", ""]}), 422)
    assert body["type"].endswith("/validation-failed")
    assert {e["field"] for e in body["errors"]} == {"title", "labels[1]"}
    bad_json = api.client.post(
        "/v1/tasks",
        content=b"{not json",
        headers={**alice.auth, "Content-Type": "application/json"},
    )
    problem(bad_json, 400)
    assert held(api, alice) == {only}


def test_deleting_a_task_frees_its_place(make_api: ApiFactory) -> None:
    api = make_api(MAX_TASKS_PER_USER="2")
    alice = api.account()
    first, second = (api.create_task(alice.token)["id"] for _ in range(2))
    problem(post(api, alice.auth, {"title": "full"}), 409)
    assert api.client.delete(f"/v1/tasks/{first}", headers=alice.auth).status_code == 204
    problem(post(api, alice.auth, {"title": "in the trash it still counts"}), 409)
    assert api.client.delete(f"/v1/trash/{first}", headers=alice.auth).status_code == 204
    third = api.create_task(alice.token, title="room again")["id"]
    assert held(api, alice) == {second, third}
    problem(post(api, alice.auth, {"title": "full again"}), 409)


def test_a_refused_create_with_an_idempotency_key_is_not_replayed(make_api: ApiFactory) -> None:
    """The refusal releases the key, so the same request runs again once there is room."""
    api = make_api(MAX_TASKS_PER_USER="1")
    alice = api.account()
    only = api.create_task(alice.token)["id"]
    body = {"title": "retried"}
    problem(post(api, alice.auth, body, **{"Idempotency-Key": "k1"}), 409)
    assert api.client.delete(f"/v1/tasks/{only}", headers=alice.auth).status_code == 204
    assert api.client.delete(f"/v1/trash/{only}", headers=alice.auth).status_code == 204
    created = post(api, alice.auth, body, **{"Idempotency-Key": "k1"})
    assert created.status_code == 201, created.text
    replayed = post(api, alice.auth, body, **{"Idempotency-Key": "k1"})
    assert replayed.status_code == 201
    assert replayed.headers["idempotent-replayed"] == "true"
    assert replayed.json()["id"] == created.json()["id"]
    assert held(api, alice) == {created.json()["id"]}
