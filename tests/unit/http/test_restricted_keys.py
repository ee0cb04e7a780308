"""Keys restricted to projects: issuing them, what they reach, and what they may issue."""

from __future__ import annotations

from tests.unit.http.conftest import Api, bearer
from tests.unit.http.projects_world import ALL_SCOPES, create_project, issue, shared

UNKNOWN = "01890000-0000-7000-8000-000000000000"


def test_the_key_object_names_its_projects(api: Api) -> None:
    w = shared(api)
    made = issue(api, w.owner.token, ["projects:read"], project_ids=[w.project_id])
    assert made.status_code == 201, made.text
    assert made.json()["project_ids"] == [w.project_id]
    plain = issue(api, w.owner.token, ["projects:read"])
    assert plain.json()["project_ids"] is None
    listed = {
        k["id"]: k for k in api.client.get("/v1/api-keys", headers=w.owner.auth).json()["items"]
    }
    assert listed[made.json()["id"]]["project_ids"] == [w.project_id]
    assert listed[plain.json()["id"]]["project_ids"] is None


def test_unknown_or_foreign_projects_are_422_on_their_index(api: Api) -> None:
    w = shared(api)
    foreign = create_project(api, w.stranger.token)["id"]
    made = issue(
        api, w.viewer.token, ["projects:read"], project_ids=[w.project_id, UNKNOWN, foreign]
    )
    assert made.status_code == 422, made.text
    assert {e["field"] for e in made.json()["errors"]} == {"project_ids[1]", "project_ids[2]"}
    for bad in ([], [w.project_id] * 51, "x", [3]):
        answer = issue(api, w.owner.token, ["projects:read"], project_ids=bad)
        assert answer.status_code == 422, bad
        assert all(e["field"].startswith("project_ids") for e in answer.json()["errors"]), bad


def test_a_restricted_key_reaches_only_its_projects(api: Api) -> None:
    w = shared(api)
    key = w.key(ALL_SCOPES, [w.project_id])
    listed = api.client.get("/v1/projects", headers=bearer(key)).json()["items"]
    assert [p["id"] for p in listed] == [w.project_id]
    other = f"/v1/projects/{w.other_project['id']}"
    assert api.client.get(other, headers=bearer(key)).status_code == 404
    assert api.client.get(other, headers=w.owner.auth).status_code == 200


def test_a_restricted_key_cannot_create_projects(api: Api) -> None:
    w = shared(api)
    key = w.key(ALL_SCOPES, [w.project_id])
    answer = api.client.post("/v1/projects", json={"name": "Mine"}, headers=bearer(key))
    assert answer.status_code == 403
    assert answer.headers["content-type"].startswith("application/problem+json")


def test_a_restricted_key_issues_only_keys_for_a_subset_of_its_projects(api: Api) -> None:
    w = shared(api)
    both = [w.project_id, str(w.other_project["id"])]
    key = w.key(ALL_SCOPES, both)
    subset = issue(api, key, ["projects:read"], project_ids=[w.project_id])
    assert subset.status_code == 201, subset.text
    assert subset.json()["project_ids"] == [w.project_id]
    narrow = subset.json()["key"]
    wider = issue(api, narrow, ["projects:read"], project_ids=both)
    assert wider.status_code == 403
    unrestricted = issue(api, key, ["projects:read"])
    assert unrestricted.status_code == 403
    same = issue(api, key, ["tasks:read"], project_ids=both)
    assert same.status_code == 201


def test_a_key_without_projects_write_cannot_create_projects(api: Api) -> None:
    w = shared(api)
    key = w.key(["projects:read", "tasks:read"])
    assert (
        api.client.post("/v1/projects", json={"name": "x"}, headers=bearer(key)).status_code == 403
    )
    assert api.client.get("/v1/projects", headers=bearer(key)).status_code == 200
    reader = w.key(["tasks:read"])
    assert api.client.get("/v1/projects", headers=bearer(reader)).status_code == 403


def test_new_scopes_are_known_and_a_key_cannot_grant_what_it_lacks(api: Api) -> None:
    w = shared(api)
    for scope in ("projects:read", "projects:write", "webhooks:manage"):
        assert issue(api, w.owner.token, [scope]).status_code == 201
    unknown = issue(api, w.owner.token, ["projects:admin"])
    assert unknown.status_code == 422
    manager = w.key(["keys:manage", "projects:read"])
    assert issue(api, manager, ["projects:write"]).status_code == 403
