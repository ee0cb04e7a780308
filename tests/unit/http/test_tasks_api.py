"""The v1 task resource over HTTP, row by row of API.md "Tasks" (every 4xx included)."""

from __future__ import annotations

import asyncio
import base64
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.unit.http.conftest import Account, Api, ApiFactory, bearer
from tests.unit.http.test_identity_api import UUID, is_utc_time, problem, unauthenticated

TASK_FIELDS = {
    "id",
    "title",
    "description",
    "status",
    "priority",
    "labels",
    "due_at",
    "completed_at",
    "project_id",
    "parent_id",
    "assignee_id",
    "created_at",
    "updated_at",
    "version",
}
MISSING_ID = "01234567-89ab-7def-8123-456789abcdef"


def field_names(body: dict[str, Any]) -> list[str]:
    return [e["field"] for e in body["errors"]]


def post(api: Api, who: Account, body: Any, **headers: str) -> Any:
    return api.client.post("/v1/tasks", json=body, headers={**who.auth, **headers})


def listing(api: Api, who: Account, **params: Any) -> dict[str, Any]:
    response = api.client.get("/v1/tasks", params=params, headers=who.auth)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def ids(page: dict[str, Any]) -> list[str]:
    return [t["id"] for t in page["items"]]


def z(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


NOW = datetime.now(UTC).replace(microsecond=0)


# --- POST /v1/tasks --------------------------------------------------------------------------


def test_create_answers_201_with_location_and_strong_etag(api: Api, alice: Account) -> None:
    response = post(api, alice, {"title": "Write the tests"})
    assert response.status_code == 201
    task = response.json()
    assert set(task) == TASK_FIELDS
    assert UUID.match(task["id"])
    assert response.headers["location"] == f"/v1/tasks/{task['id']}"
    etag = response.headers["etag"]
    assert not etag.startswith("W/")
    assert etag.startswith('"')
    assert etag.endswith('"')
    assert task["version"] == 1
    assert task["status"] == "todo"
    assert task["priority"] == 1
    assert task["labels"] == []
    assert task["description"] is None
    assert task["due_at"] is None
    assert task["completed_at"] is None
    assert is_utc_time(task["created_at"])
    assert task["created_at"] == task["updated_at"]
    fetched = api.client.get(response.headers["location"], headers=alice.auth)
    assert fetched.json() == task
    assert fetched.headers["etag"] == etag


def test_create_trims_title_and_merges_labels(api: Api, alice: Account) -> None:
    task = api.create_task(
        alice.token, title="  Pay rent \n", labels=[" home", "money ", "home", "Home", "money"]
    )
    assert task["title"] == "Pay rent"
    assert task["labels"] == ["home", "money", "Home"]


def test_create_with_every_field(api: Api, alice: Account) -> None:
    due = NOW + timedelta(days=3)
    task = api.create_task(
        alice.token,
        title="Ship",
        description="all of it",
        status="in_progress",
        priority=4,
        labels=["work"],
        due_at=due.isoformat(),  # +00:00 in, Z out
    )
    assert task["description"] == "all of it"
    assert task["status"] == "in_progress"
    assert task["priority"] == 4
    assert task["due_at"] == z(due)


def test_due_at_with_an_offset_comes_back_in_utc(api: Api, alice: Account) -> None:
    task = api.create_task(alice.token, due_at="2030-01-01T12:00:00+02:00")
    assert task["due_at"] == "2030-01-01T10:00:00Z"


def test_create_done_sets_completed_at(api: Api, alice: Account) -> None:
    task = api.create_task(alice.token, status="done")
    assert task["completed_at"] is not None
    assert is_utc_time(task["completed_at"])


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"title": "x", "id": MISSING_ID}, "id"),
        ({"title": "x", "version": 3}, "version"),
        ({"title": "x", "completed_at": "2030-01-01T00:00:00Z"}, "completed_at"),
        ({"title": "x", "created_at": "2030-01-01T00:00:00Z"}, "created_at"),
        ({"title": "x", "updated_at": "2030-01-01T00:00:00Z"}, "updated_at"),
        ({"title": "x", "colour": "red"}, "colour"),
        ({}, "title"),
        ({"title": ""}, "title"),
        ({"title": "   "}, "title"),
        ({"title": "x" * 501}, "title"),
        ({"title": None}, "title"),
        ({"title": 5}, "title"),
        ({"title": "x", "description": "d" * 20_001}, "description"),
        ({"title": "x", "status": "blocked"}, "status"),
        ({"title": "x", "priority": 0}, "priority"),
        ({"title": "x", "priority": 5}, "priority"),
        ({"title": "x", "priority": "2"}, "priority"),
        ({"title": "x", "priority": 1.5}, "priority"),
        ({"title": "x", "labels": "work"}, "labels"),
        ({"title": "x", "labels": [f"l{i}" for i in range(21)]}, "labels"),
        ({"title": "x", "labels": ["ok", ""]}, "labels"),
        ({"title": "x", "labels": ["x" * 51]}, "labels"),
        ({"title": "x", "labels": [3]}, "labels"),
        ({"title": "x", "due_at": "tomorrow"}, "due_at"),
        ({"title": "x", "due_at": "2030-01-01T00:00:00"}, "due_at"),  # no offset
    ],
)
def test_create_rejects_with_422_naming_the_field(
    api: Api, alice: Account, body: dict[str, Any], field: str
) -> None:
    errors = problem(post(api, alice, body), 422)["errors"]
    assert field in [e["field"].split("[")[0] for e in errors], errors
    assert api.rows("tasks") == {}


@pytest.mark.parametrize(
    "body",
    [
        {"title": "x" * 500},
        {"title": "  " + "x" * 500 + "  "},
        {"title": "x", "description": "d" * 20_000},
        {"title": "x", "labels": [f"l{i}" for i in range(20)]},
        {"title": "x", "labels": ["x" * 50]},
        {"title": "x", "labels": [f"l{i % 5}" for i in range(30)]},  # 30 given, 5 after merging
        {"title": "x", "priority": 4},
        {"title": "x", "description": None, "due_at": None},
    ],
)
def test_create_accepts_values_at_the_bounds(
    api: Api, alice: Account, body: dict[str, Any]
) -> None:
    assert post(api, alice, body).status_code == 201


def test_create_needs_credentials(api: Api) -> None:
    unauthenticated(api.client.post("/v1/tasks", json={"title": "x"}))
    assert api.rows("tasks") == {}


# --- Idempotency-Key ---------------------------------------------------------------------------


def test_idempotent_repeat_returns_the_first_answer(api: Api, alice: Account) -> None:
    body = {"title": "once", "labels": ["a"]}
    first = post(api, alice, body, **{"Idempotency-Key": "k-1"})
    again = post(api, alice, body, **{"Idempotency-Key": "k-1"})
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["location"] == first.headers["location"]
    assert again.headers["etag"] == first.headers["etag"]
    assert len(api.rows("tasks")) == 1
    assert len(listing(api, alice)["items"]) == 1


def test_idempotency_key_with_another_body_is_422(api: Api, alice: Account) -> None:
    post(api, alice, {"title": "once"}, **{"Idempotency-Key": "k-2"})
    body = problem(post(api, alice, {"title": "twice"}, **{"Idempotency-Key": "k-2"}), 422)
    assert body["errors"]
    assert len(api.rows("tasks")) == 1


def test_idempotency_keys_are_per_user(api: Api, alice: Account, bob: Account) -> None:
    a = post(api, alice, {"title": "same"}, **{"Idempotency-Key": "shared"})
    b = post(api, bob, {"title": "same"}, **{"Idempotency-Key": "shared"})
    assert a.status_code == b.status_code == 201
    assert a.json()["id"] != b.json()["id"]
    assert api.client.get(a.headers["location"], headers=bob.auth).status_code == 404


def test_different_idempotency_keys_create_different_tasks(api: Api, alice: Account) -> None:
    a = post(api, alice, {"title": "same"}, **{"Idempotency-Key": "k-a"})
    b = post(api, alice, {"title": "same"}, **{"Idempotency-Key": "k-b"})
    assert a.json()["id"] != b.json()["id"]
    assert len(api.rows("tasks")) == 2


def test_a_failed_create_does_not_hold_its_idempotency_key(api: Api, alice: Account) -> None:
    problem(post(api, alice, {"title": " "}, **{"Idempotency-Key": "k-f"}), 422)
    assert post(api, alice, {"title": "ok"}, **{"Idempotency-Key": "k-f"}).status_code == 201


@pytest.mark.parametrize("key", ["", "x" * 256, "has space"])
def test_a_malformed_idempotency_key_is_4xx(api: Api, alice: Account, key: str) -> None:
    response = post(api, alice, {"title": "x"}, **{"Idempotency-Key": key})
    assert response.status_code in (400, 422), response.text
    assert api.rows("tasks") == {}


def test_a_repeat_while_the_first_is_in_flight_is_409(api: Api, alice: Account) -> None:
    store = api.container.idempotency_store()
    body = {"title": "slow"}
    # The fingerprint of this body, learnt from a completed record of another key.
    post(api, alice, body, **{"Idempotency-Key": "probe"})
    probe = asyncio.run(store.begin(f"{alice.id}:probe", "?", 60))
    assert probe is not None
    # A first request with key "busy" has claimed it and not finished yet.
    assert asyncio.run(store.begin(f"{alice.id}:busy", probe.fingerprint, 60)) is None
    problem(post(api, alice, body, **{"Idempotency-Key": "busy"}), 409)
    assert len(api.rows("tasks")) == 1


# --- GET /v1/tasks/{id} -------------------------------------------------------------------------


def test_get_answers_the_task_with_its_etag(api: Api, alice: Account) -> None:
    task = api.create_task(alice.token, title="read me")
    response = api.client.get(f"/v1/tasks/{task['id']}", headers=alice.auth)
    assert response.status_code == 200
    assert response.json() == task
    assert not response.headers["etag"].startswith("W/")


def test_if_none_match_with_the_current_tag_is_304(api: Api, alice: Account) -> None:
    created = post(api, alice, {"title": "cache me"})
    url, etag = created.headers["location"], created.headers["etag"]
    cached = api.client.get(url, headers={**alice.auth, "If-None-Match": etag})
    assert cached.status_code == 304
    assert cached.content == b""
    assert cached.headers["etag"] == etag
    other = api.client.get(url, headers={**alice.auth, "If-None-Match": '"something-else"'})
    assert other.status_code == 200
    listed = api.client.get(url, headers={**alice.auth, "If-None-Match": f'"x", {etag}'})
    assert listed.status_code == 304


def test_if_none_match_with_an_old_tag_is_200(api: Api, alice: Account) -> None:
    created = post(api, alice, {"title": "v1"})
    url, old = created.headers["location"], created.headers["etag"]
    api.client.patch(url, json={"title": "v2"}, headers=alice.auth)
    response = api.client.get(url, headers={**alice.auth, "If-None-Match": old})
    assert response.status_code == 200
    assert response.headers["etag"] != old
    assert response.json()["title"] == "v2"


@pytest.mark.parametrize("task_id", [MISSING_ID, "not-a-uuid", "0" * 300])
def test_get_an_unknown_task_is_404(api: Api, alice: Account, task_id: str) -> None:
    problem(api.client.get(f"/v1/tasks/{task_id}", headers=alice.auth), 404)


# --- PATCH /v1/tasks/{id} -----------------------------------------------------------------------


@pytest.mark.parametrize("content_type", ["application/merge-patch+json", "application/json"])
def test_patch_merges_and_bumps_version_and_etag(
    api: Api, alice: Account, content_type: str
) -> None:
    created = post(api, alice, {"title": "old", "description": "keep", "labels": ["a"]})
    url = created.headers["location"]
    response = api.client.patch(
        url,
        content=b'{"title": "  new  ", "priority": 3}',
        headers={**alice.auth, "Content-Type": content_type},
    )
    assert response.status_code == 200, response.text
    task = response.json()
    assert task["title"] == "new"
    assert task["priority"] == 3
    assert task["description"] == "keep"
    assert task["labels"] == ["a"]
    assert task["version"] == 2
    assert task["updated_at"] >= task["created_at"]
    assert response.headers["etag"] != created.headers["etag"]
    assert not response.headers["etag"].startswith("W/")
    assert api.client.get(url, headers=alice.auth).headers["etag"] == response.headers["etag"]


def test_patch_null_clears_description_and_due_at(api: Api, alice: Account) -> None:
    task = api.create_task(alice.token, description="d", due_at="2030-01-01T00:00:00Z")
    response = api.client.patch(
        f"/v1/tasks/{task['id']}",
        json={"description": None, "due_at": None},
        headers=alice.auth,
    )
    assert response.status_code == 200
    assert response.json()["description"] is None
    assert response.json()["due_at"] is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"title": None}, "title"),
        ({"status": None}, "status"),
        ({"priority": None}, "priority"),
        ({"labels": None}, "labels"),
        ({"title": "   "}, "title"),
        ({"priority": 9}, "priority"),
        ({"status": "nope"}, "status"),
        ({"id": MISSING_ID}, "id"),
        ({"version": 7}, "version"),
        ({"completed_at": None}, "completed_at"),
        ({"created_at": "2030-01-01T00:00:00Z"}, "created_at"),
        ({"updated_at": "2030-01-01T00:00:00Z"}, "updated_at"),
        ({"owner": "me"}, "owner"),
    ],
)
def test_patch_rejects_with_422_naming_the_field(
    api: Api, alice: Account, body: dict[str, Any], field: str
) -> None:
    task = api.create_task(alice.token, title="stay")
    response = api.client.patch(f"/v1/tasks/{task['id']}", json=body, headers=alice.auth)
    assert field in [e["field"].split("[")[0] for e in problem(response, 422)["errors"]]
    assert api.client.get(f"/v1/tasks/{task['id']}", headers=alice.auth).json() == task


def test_status_transitions_set_and_clear_completed_at(api: Api, alice: Account) -> None:
    task = api.create_task(alice.token)
    url = f"/v1/tasks/{task['id']}"

    def set_status(status: str) -> dict[str, Any]:
        response = api.client.patch(url, json={"status": status}, headers=alice.auth)
        assert response.status_code == 200
        body: dict[str, Any] = response.json()
        return body

    assert set_status("in_progress")["completed_at"] is None
    done = set_status("done")
    assert done["completed_at"] is not None
    assert is_utc_time(done["completed_at"])
    # Staying done (another edit) keeps the first completion time.
    edited = api.client.patch(url, json={"title": "renamed"}, headers=alice.auth).json()
    assert edited["completed_at"] == done["completed_at"]
    assert set_status("todo")["completed_at"] is None
    assert set_status("done")["completed_at"] is not None
    final = set_status("in_progress")
    assert final["completed_at"] is None
    assert final["version"] == 7


def test_patch_with_a_stale_if_match_is_412(api: Api, alice: Account) -> None:
    created = post(api, alice, {"title": "v1"})
    url, first = created.headers["location"], created.headers["etag"]
    second = api.client.patch(url, json={"title": "v2"}, headers={**alice.auth, "If-Match": first})
    assert second.status_code == 200
    stale = api.client.patch(url, json={"title": "v3"}, headers={**alice.auth, "If-Match": first})
    problem(stale, 412)
    assert api.client.get(url, headers=alice.auth).json()["title"] == "v2"
    current = second.headers["etag"]
    third = api.client.patch(url, json={"title": "v3"}, headers={**alice.auth, "If-Match": current})
    assert third.status_code == 200
    assert third.json()["version"] == 3


def test_patch_if_match_naming_another_task_is_412(api: Api, alice: Account) -> None:
    one = post(api, alice, {"title": "one"})
    two = post(api, alice, {"title": "two"})
    response = api.client.patch(
        one.headers["location"],
        json={"title": "x"},
        headers={**alice.auth, "If-Match": two.headers["etag"]},
    )
    problem(response, 412)


def test_patch_an_unknown_task_is_404(api: Api, alice: Account) -> None:
    problem(
        api.client.patch(f"/v1/tasks/{MISSING_ID}", json={"title": "x"}, headers=alice.auth), 404
    )


def test_patch_with_an_empty_object_changes_nothing_visible(api: Api, alice: Account) -> None:
    task = api.create_task(alice.token)
    response = api.client.patch(f"/v1/tasks/{task['id']}", json={}, headers=alice.auth)
    assert response.status_code == 200
    assert response.json()["title"] == task["title"]


# --- DELETE /v1/tasks/{id} ----------------------------------------------------------------------


def test_delete_is_204_then_404(api: Api, alice: Account) -> None:
    task = api.create_task(alice.token)
    url = f"/v1/tasks/{task['id']}"
    response = api.client.delete(url, headers=alice.auth)
    assert response.status_code == 204
    assert response.content == b""
    problem(api.client.get(url, headers=alice.auth), 404)
    problem(api.client.delete(url, headers=alice.auth), 404)
    problem(api.client.patch(url, json={"title": "x"}, headers=alice.auth), 404)
    assert listing(api, alice)["items"] == []


def test_delete_with_a_stale_if_match_is_412(api: Api, alice: Account) -> None:
    created = post(api, alice, {"title": "v1"})
    url, old = created.headers["location"], created.headers["etag"]
    api.client.patch(url, json={"title": "v2"}, headers=alice.auth)
    problem(api.client.delete(url, headers={**alice.auth, "If-Match": old}), 412)
    assert api.client.get(url, headers=alice.auth).status_code == 200
    current = api.client.get(url, headers=alice.auth).headers["etag"]
    assert api.client.delete(url, headers={**alice.auth, "If-Match": current}).status_code == 204


# --- another user's task ------------------------------------------------------------------------


def test_another_users_task_is_404_for_get_patch_and_delete(
    api: Api, alice: Account, bob: Account
) -> None:
    task = api.create_task(alice.token, title="alice's")
    url = f"/v1/tasks/{task['id']}"
    missing = problem(api.client.get(f"/v1/tasks/{MISSING_ID}", headers=bob.auth), 404)
    theirs = problem(api.client.get(url, headers=bob.auth), 404)
    assert theirs["type"] == missing["type"]
    assert theirs["detail"].replace(task["id"], "?") == missing["detail"].replace(MISSING_ID, "?")
    problem(api.client.patch(url, json={"title": "mine now"}, headers=bob.auth), 404)
    problem(api.client.delete(url, headers=bob.auth), 404)
    assert listing(api, bob)["items"] == []
    assert api.client.get(url, headers=alice.auth).json() == task


def test_task_endpoints_need_credentials(api: Api, alice: Account) -> None:
    task = api.create_task(alice.token)
    url = f"/v1/tasks/{task['id']}"
    unauthenticated(api.client.get("/v1/tasks"))
    unauthenticated(api.client.get(url))
    unauthenticated(api.client.patch(url, json={"title": "x"}))
    unauthenticated(api.client.delete(url))
    unauthenticated(api.client.get(url, headers=bearer("not-a-token")))


def test_scopes_apply_to_every_task_endpoint(api: Api, alice: Account) -> None:
    task = api.create_task(alice.token)
    url = f"/v1/tasks/{task['id']}"
    reader = bearer(api.key(alice.token, ["tasks:read"]))
    writer = bearer(api.key(alice.token, ["tasks:write"]))
    manager = bearer(api.key(alice.token, ["keys:manage"]))
    assert api.client.get(url, headers=reader).status_code == 200
    problem(api.client.patch(url, json={"title": "x"}, headers=reader), 403)
    problem(api.client.delete(url, headers=reader), 403)
    problem(api.client.get(url, headers=writer), 403)
    assert api.client.patch(url, json={"title": "y"}, headers=writer).status_code == 200
    for call in (
        lambda: api.client.get("/v1/tasks", headers=manager),
        lambda: api.client.get(url, headers=manager),
        lambda: api.client.post("/v1/tasks", json={"title": "z"}, headers=manager),
    ):
        problem(call(), 403)
    assert api.client.delete(url, headers=writer).status_code == 204


# --- GET /v1/tasks: filters ---------------------------------------------------------------------


@pytest.fixture
def corpus(api: Api, alice: Account, bob: Account) -> dict[str, dict[str, Any]]:
    """Alice's tasks, named; Bob has one that must never show up in Alice's lists."""
    api.create_task(bob.token, title="bob milk", labels=["home"], priority=4)
    specs: dict[str, dict[str, Any]] = {
        "milk": {"title": "Buy MILK", "labels": ["home", "shop"], "priority": 2,
                 "due_at": z(NOW + timedelta(days=1))},
        "taxes": {"title": "Taxes", "description": "the annual milkrun of paperwork",
                  "labels": ["home", "money"], "priority": 4, "status": "in_progress",
                  "due_at": z(NOW + timedelta(days=10))},
        "gym": {"title": "Gym", "labels": ["health"], "status": "done",
                "due_at": z(NOW - timedelta(days=1))},
        "read": {"title": "Read a book", "labels": ["home"], "priority": 2},
        "call": {"title": "Call mum", "priority": 3, "due_at": z(NOW + timedelta(days=10))},
    }  # fmt: skip
    return {name: api.create_task(alice.token, **spec) for name, spec in specs.items()}


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, {"milk", "taxes", "gym", "read", "call"}),
        ({"status": "todo"}, {"milk", "read", "call"}),
        ({"status": "done"}, {"gym"}),
        ({"status": "in_progress"}, {"taxes"}),
        ({"priority": "2"}, {"milk", "read"}),
        ({"priority": "4"}, {"taxes"}),
        ({"label": "home"}, {"milk", "taxes", "read"}),
        ({"label": ["home", "shop"]}, {"milk"}),
        ({"label": ["home", "health"]}, set()),
        ({"label": "HOME"}, set()),
        ({"q": "milk"}, {"milk", "taxes"}),  # title or description, case-insensitive
        ({"q": "MUM"}, {"call"}),
        ({"q": "nothing like it"}, set()),
        ({"status": "todo", "label": "home", "priority": "2"}, {"milk", "read"}),
    ],
)
def test_list_filters(
    api: Api,
    alice: Account,
    corpus: dict[str, dict[str, Any]],
    params: dict[str, Any],
    expected: set[str],
) -> None:
    names = {task["id"]: name for name, task in corpus.items()}
    page = listing(api, alice, **params)
    assert {names[i] for i in ids(page)} == expected
    assert len(ids(page)) == len(expected)


def test_list_due_window_is_half_open(
    api: Api, alice: Account, corpus: dict[str, dict[str, Any]]
) -> None:
    names = {task["id"]: name for name, task in corpus.items()}

    def window(**params: str) -> set[str]:
        return {names[i] for i in ids(listing(api, alice, **params))}

    tomorrow, in_ten_days = z(NOW + timedelta(days=1)), z(NOW + timedelta(days=10))
    assert window(due_before=z(NOW)) == {"gym"}
    assert window(due_after=z(NOW)) == {"milk", "taxes", "call"}
    assert window(due_after=tomorrow, due_before=in_ten_days) == {"milk"}
    assert window(due_after=in_ten_days) == {"taxes", "call"}
    assert window(due_before=tomorrow) == {"gym"}
    # The same instant with an offset.
    plus_two = (NOW + timedelta(days=1)).astimezone(timezone(timedelta(hours=2))).isoformat()
    assert plus_two.endswith("+02:00")
    assert window(due_before=plus_two) == {"gym"}


# --- GET /v1/tasks: sorts -----------------------------------------------------------------------


def _key(task: dict[str, Any], field: str) -> tuple[Any, ...]:
    value = task[field]
    if field == "due_at":
        return (value is None, datetime.fromisoformat(value) if value else None, task["id"])
    if field in ("created_at", "updated_at"):
        return (datetime.fromisoformat(value), task["id"])
    return (value, task["id"])


@pytest.mark.parametrize(
    "sort",
    [
        "created_at",
        "-created_at",
        "due_at",
        "-due_at",
        "priority",
        "-priority",
        "updated_at",
        "-updated_at",
    ],
)
def test_list_sorts(api: Api, alice: Account, corpus: dict[str, dict[str, Any]], sort: str) -> None:
    # Touch one task so updated_at differs from created_at order.
    api.client.patch(f"/v1/tasks/{corpus['milk']['id']}", json={"priority": 1}, headers=alice.auth)
    items = listing(api, alice, sort=sort)["items"]
    field = sort.lstrip("-")
    expected = sorted(items, key=lambda t: _key(t, field), reverse=sort.startswith("-"))
    assert [t["id"] for t in items] == [t["id"] for t in expected]
    assert len(items) == 5


def test_default_sort_is_newest_first(
    api: Api, alice: Account, corpus: dict[str, dict[str, Any]]
) -> None:
    assert ids(listing(api, alice)) == ids(listing(api, alice, sort="-created_at"))
    assert ids(listing(api, alice))[0] == corpus["call"]["id"]
    assert ids(listing(api, alice))[-1] == corpus["milk"]["id"]


def test_due_at_sort_puts_tasks_without_a_date_last(
    api: Api, alice: Account, corpus: dict[str, dict[str, Any]]
) -> None:
    assert ids(listing(api, alice, sort="due_at"))[-1] == corpus["read"]["id"]
    assert ids(listing(api, alice, sort="-due_at"))[0] == corpus["read"]["id"]


# --- GET /v1/tasks: bad parameters --------------------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [
        {"limit": "0"},
        {"limit": "201"},
        {"limit": "-1"},
        {"limit": "ten"},
        {"limit": "1.5"},
        {"sort": "title"},
        {"sort": "--created_at"},
        {"status": "blocked"},
        {"priority": "0"},
        {"priority": "5"},
        {"priority": "high"},
        {"due_before": "yesterday"},
        {"due_after": "2030-13-01T00:00:00Z"},
        {"q": ""},
        {"q": "x" * 201},
        {"label": ""},
        {"label": "x" * 51},
    ],
)
def test_list_rejects_bad_parameters(api: Api, alice: Account, params: dict[str, str]) -> None:
    response = api.client.get("/v1/tasks", params=params, headers=alice.auth)
    assert response.status_code in (400, 422), response.text
    body = problem(response, response.status_code)
    if response.status_code == 422:
        assert set(params) & {e["field"].split("[")[0] for e in body["errors"]}, body


@pytest.mark.parametrize("limit", ["1", "200"])
def test_list_accepts_limit_bounds(api: Api, alice: Account, limit: str) -> None:
    api.create_task(alice.token)
    api.create_task(alice.token)
    page = listing(api, alice, limit=limit)
    assert len(page["items"]) == min(int(limit), 2)


def test_list_default_limit_is_50(api: Api, alice: Account) -> None:
    for i in range(51):
        api.create_task(alice.token, title=f"t{i}")
    page = listing(api, alice)
    assert len(page["items"]) == 50
    assert page["next_cursor"] is not None
    rest = listing(api, alice, cursor=page["next_cursor"])
    assert len(rest["items"]) == 1
    assert rest["next_cursor"] is None


# --- GET /v1/tasks: cursors ---------------------------------------------------------------------


def walk(api: Api, who: Account, between: Any = None, **params: Any) -> tuple[list[str], int]:
    """Every page of a list; checks Link against next_cursor and follows Link on odd pages."""
    seen: list[str] = []
    pages = 0
    response = api.client.get("/v1/tasks", params=params, headers=who.auth)
    while True:
        assert response.status_code == 200, response.text
        page = response.json()
        pages += 1
        seen += ids(page)
        cursor = page["next_cursor"]
        if cursor is None:
            assert "link" not in response.headers
            return seen, pages
        link = response.headers["link"]
        assert link.endswith('>; rel="next"')
        target = link[1 : link.index(">")]
        query = parse_qs(urlsplit(target).query)
        assert query["cursor"] == [cursor]
        for name, value in params.items():
            assert query[name] == (value if isinstance(value, list) else [str(value)])
        if between is not None:
            between()
        if pages % 2:
            response = api.client.get(target, headers=who.auth)
        else:
            response = api.client.get(
                "/v1/tasks", params={**params, "cursor": cursor}, headers=who.auth
            )
        assert pages < 100


@pytest.mark.parametrize(
    "sort", ["created_at", "-created_at", "due_at", "-due_at", "priority", "-priority"]
)
def test_walking_all_pages_returns_every_task_exactly_once(
    api: Api, alice: Account, sort: str
) -> None:
    made = [
        api.create_task(
            alice.token,
            title=f"t{i}",
            priority=1 + i % 3,
            labels=["even"] if i % 2 == 0 else [],
            due_at=z(NOW + timedelta(hours=i % 4)) if i % 3 else None,
        )["id"]
        for i in range(11)
    ]
    seen, pages = walk(api, alice, sort=sort, limit=3)
    assert sorted(seen) == sorted(made)
    assert pages == 4
    assert seen == ids(listing(api, alice, sort=sort, limit=200))
    evens, _ = walk(api, alice, sort=sort, limit=2, label="even")
    assert sorted(evens) == sorted(made[::2])


def test_walking_is_stable_while_tasks_are_added(api: Api, alice: Account) -> None:
    made = [api.create_task(alice.token, title=f"t{i}")["id"] for i in range(7)]
    added: list[str] = []

    def add() -> None:
        added.append(api.create_task(alice.token, title="late")["id"])

    for sort in ("-created_at", "created_at"):
        seen, _ = walk(api, alice, between=add, sort=sort, limit=2)
        assert len(seen) == len(set(seen)), "a task came twice"
        assert set(made) <= set(seen)
        assert set(seen) <= set(made) | set(added)


def test_a_tampered_cursor_is_400(api: Api, alice: Account) -> None:
    for i in range(3):
        api.create_task(alice.token, title=f"t{i}")
    cursor = listing(api, alice, limit=1)["next_cursor"]
    raw = bytearray(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    raw[-3] ^= 0x01
    tampered = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    for bad in (tampered, cursor[:-2], "garbage", "!!!", "x" * 3000, cursor + "A"):
        response = api.client.get("/v1/tasks", params={"cursor": bad}, headers=alice.auth)
        problem(response, 400)


def test_a_cursor_reused_with_another_sort_or_filter_is_400(api: Api, alice: Account) -> None:
    for i in range(3):
        api.create_task(alice.token, title=f"t{i}", labels=["x"])
    cursor = listing(api, alice, limit=1)["next_cursor"]
    assert listing(api, alice, limit=1, cursor=cursor)["items"]  # fine with the same query
    assert listing(api, alice, limit=2, cursor=cursor)["items"]  # limit may change
    for params in ({"sort": "created_at"}, {"sort": "priority"}, {"status": "todo"},
                   {"label": "x"}, {"q": "t"}, {"priority": "1"}):  # fmt: skip
        response = api.client.get(
            "/v1/tasks", params={**params, "cursor": cursor}, headers=alice.auth
        )
        problem(response, 400)


def test_another_users_cursor_shows_nothing_of_theirs(
    api: Api, alice: Account, bob: Account
) -> None:
    for i in range(3):
        api.create_task(alice.token, title=f"t{i}")
    mine = api.create_task(bob.token, title="bob's")
    cursor = listing(api, alice, limit=1)["next_cursor"]
    response = api.client.get("/v1/tasks", params={"cursor": cursor}, headers=bob.auth)
    assert response.status_code in (200, 400)
    if response.status_code == 200:
        assert set(ids(response.json())) <= {mine["id"]}


def test_a_cursor_from_another_deployment_is_400(make_api: ApiFactory) -> None:
    one = make_api(SESSION_HASH_SECRET="one-" + "s" * 40)
    two = make_api(SESSION_HASH_SECRET="two-" + "s" * 40)
    a1, a2 = one.account(), two.account()
    for api, who in ((one, a1), (two, a2)):
        for i in range(2):
            api.create_task(who.token, title=f"t{i}")
    cursor = listing(one, a1, limit=1)["next_cursor"]
    problem(two.client.get("/v1/tasks", params={"cursor": cursor}, headers=a2.auth), 400)


def test_the_next_link_keeps_the_callers_parameters_in_the_callers_order(
    api: Api, alice: Account
) -> None:
    for title in ("one", "two", "three"):
        assert post(api, alice, {"title": title, "labels": ["x", "y"]}).status_code == 201
    query = "status=todo&limit=1&label=y&priority=1&label=x&q=o"
    response = api.client.get(f"/v1/tasks?{query}", headers=alice.auth)

    assert response.status_code == 200, response.text
    link = response.headers["link"]
    target = link[1 : link.index(">")]
    cursor = response.json()["next_cursor"]
    assert target == f"/v1/tasks?{query}&cursor={cursor}"


def test_an_answer_over_the_replay_cap_is_not_kept_and_a_retry_is_sent_to_the_task(
    make_api: ApiFactory,
) -> None:
    api = make_api(IDEMPOTENCY_MAX_RESPONSE_BYTES="1000")
    alice = api.account()
    big = {"title": "big", "description": "x" * 2000}
    first = post(api, alice, big, **{"Idempotency-Key": "big-1"})
    headers = {**alice.auth, "Idempotency-Key": "big-1"}
    again = api.client.post("/v1/tasks", json=big, headers=headers, follow_redirects=False)
    assert first.status_code == 201
    assert again.status_code == 303
    assert again.headers["location"] == first.headers["location"]
    assert again.headers["idempotent-replayed"] == "true"
    assert len(api.rows("tasks")) == 1
    # A client that follows the redirect gets the task.
    followed = post(api, alice, big, **{"Idempotency-Key": "big-1"})
    assert (followed.status_code, followed.json()) == (200, first.json())
    record = asyncio.run(api.container.idempotency_store().begin(f"{alice.id}:big-1", "", 60))
    assert record is not None
    assert record.response is not None
    assert record.response.body == b""  # what is kept is the status and the Location
    # An answer within the cap is still replayed whole.
    small = post(api, alice, {"title": "small"}, **{"Idempotency-Key": "small-1"})
    assert post(api, alice, {"title": "small"}, **{"Idempotency-Key": "small-1"}).json() == (
        small.json()
    )
