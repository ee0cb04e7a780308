"""Projects and members over HTTP: the answers' shapes, conditional requests, merge patch, the
inbox and last-owner rules, and idempotent creation."""

from __future__ import annotations

import re
from typing import Any

import httpx

from tests.unit.http.conftest import Account, Api, bearer, fresh_email
from tests.unit.http.projects_world import add_member, create_project, make_inbox, shared

PROJECT_FIELDS = {
    "id",
    "name",
    "description",
    "inbox",
    "role",
    "created_at",
    "updated_at",
    "version",
}
MEMBER_FIELDS = {"user_id", "email", "name", "role", "added_at"}


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


def fields_of(body: dict[str, Any]) -> set[str]:
    return {e["field"] for e in body["errors"]}


def test_create_answers_201_with_location_etag_and_the_owner_role(api: Api, alice: Account) -> None:
    response = api.client.post(
        "/v1/projects", json={"name": "  Launch  ", "description": "Q3"}, headers=alice.auth
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == PROJECT_FIELDS
    assert body["name"] == "Launch"
    assert (body["role"], body["inbox"], body["version"]) == ("owner", False, 1)
    assert body["created_at"].endswith("Z")
    assert response.headers["location"] == f"/v1/projects/{body['id']}"
    assert response.headers["etag"] == f'"{body["id"]}.1"'
    again = api.client.get(response.headers["location"], headers=alice.auth)
    assert again.json() == body


def test_bad_project_bodies_are_422_naming_the_field(api: Api, alice: Account) -> None:
    for body, field in (
        ({"name": "   "}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"name": 3}, "name"),
        ({"name": "ok", "description": "d" * 20_001}, "description"),
        ({"name": "ok", "inbox": True}, "inbox"),
        ({}, "name"),
    ):
        response = api.client.post("/v1/projects", json=body, headers=alice.auth)
        assert field in fields_of(problem(response, 422)), body
    listed = api.client.get("/v1/projects", headers=alice.auth).json()["items"]
    assert [p["inbox"] for p in listed] == [True]  # only the inbox sign-up made


def test_the_list_holds_the_callers_projects_oldest_first(api: Api) -> None:
    alice, bob = api.account(), api.account()
    first = create_project(api, alice.token, "First")
    second = create_project(api, bob.token, "Second")
    third = create_project(api, alice.token, "Third")
    assert add_member(api, bob.token, second["id"], alice.email, "viewer").status_code == 201
    listed = api.client.get("/v1/projects", headers=alice.auth)
    assert listed.status_code == 200
    items = [p for p in listed.json()["items"] if not p["inbox"]]
    assert [p["id"] for p in items] == [first["id"], second["id"], third["id"]]
    assert [p["role"] for p in items] == ["owner", "viewer", "owner"]
    # Oldest first: the inbox, made at sign-up, leads.
    assert listed.json()["items"][0]["inbox"] is True
    bobs = api.client.get("/v1/projects", headers=bob.auth).json()["items"]
    assert [p["id"] for p in bobs if not p["inbox"]] == [second["id"]]


def test_get_answers_304_for_the_current_etag_and_head_works(api: Api, alice: Account) -> None:
    project = create_project(api, alice.token)
    path = f"/v1/projects/{project['id']}"
    first = api.client.get(path, headers=alice.auth)
    tag = first.headers["etag"]
    unchanged = api.client.get(path, headers={**alice.auth, "If-None-Match": tag})
    assert unchanged.status_code == 304
    assert unchanged.headers["etag"] == tag
    head = api.client.head(path, headers=alice.auth)
    assert head.status_code == 200
    assert head.headers["etag"] == tag
    assert head.content == b""
    for listing in ("/v1/projects", f"{path}/members"):
        assert api.client.head(listing, headers=alice.auth).status_code == 200


def test_patch_is_a_merge_patch_with_if_match(api: Api, alice: Account) -> None:
    project = create_project(api, alice.token, description="to clear")
    path = f"/v1/projects/{project['id']}"
    merge = {**alice.auth, "Content-Type": "application/merge-patch+json"}
    changed = api.client.patch(path, content=b'{"description": null}', headers=merge)
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert (body["name"], body["description"], body["version"]) == ("Shared", None, 2)
    assert changed.headers["etag"] == f'"{project["id"]}.2"'
    stale = api.client.patch(
        path, json={"name": "New"}, headers={**alice.auth, "If-Match": f'"{project["id"]}.1"'}
    )
    problem(stale, 412)
    fresh = api.client.patch(
        path, json={"name": "New"}, headers={**alice.auth, "If-Match": changed.headers["etag"]}
    )
    assert fresh.json()["name"] == "New"
    for bad, field in (
        ({"name": None}, "name"),
        ({"version": 9}, "version"),
        ({"name": ""}, "name"),
    ):
        assert field in fields_of(
            problem(api.client.patch(path, json=bad, headers=alice.auth), 422)
        )
    assert api.client.get(path, headers=alice.auth).json()["version"] == 3


def test_delete_is_for_good_and_honours_if_match(api: Api, alice: Account) -> None:
    project = create_project(api, alice.token)
    path = f"/v1/projects/{project['id']}"
    stale = api.client.delete(path, headers={**alice.auth, "If-Match": f'"{project["id"]}.7"'})
    problem(stale, 412)
    assert api.client.delete(path, headers=alice.auth).status_code == 204
    problem(api.client.get(path, headers=alice.auth), 404)
    problem(api.client.delete(path, headers=alice.auth), 404)


def test_unknown_and_malformed_ids_are_404(api: Api, alice: Account) -> None:
    for project_id in ("01890000-0000-7000-8000-000000000000", "not-an-id"):
        problem(api.client.get(f"/v1/projects/{project_id}", headers=alice.auth), 404)
        problem(api.client.get(f"/v1/projects/{project_id}/members", headers=alice.auth), 404)


def test_an_inbox_is_renamed_but_never_deleted_or_shared(api: Api, alice: Account) -> None:
    bob = api.account()
    inbox_id = make_inbox(api, alice.id)
    path = f"/v1/projects/{inbox_id}"
    got = api.client.get(path, headers=alice.auth).json()
    assert (got["name"], got["inbox"], got["role"]) == ("Inbox", True, "owner")
    problem(api.client.delete(path, headers=alice.auth), 409)
    problem(add_member(api, alice.token, inbox_id, bob.email, "viewer"), 409)
    renamed = api.client.patch(path, json={"name": "Mine"}, headers=alice.auth)
    assert renamed.json()["name"] == "Mine"
    problem(api.client.delete(f"{path}/members/{alice.id}", headers=alice.auth), 409)


# --- members -------------------------------------------------------------------------------


def test_members_are_listed_owners_first_then_by_added_at(api: Api) -> None:
    w = shared(api)
    extra = api.account(fresh_email("late"))
    path = f"/v1/projects/{w.project_id}/members"
    assert add_member(api, w.owner.token, w.project_id, extra.email, "owner").status_code == 201
    listed = api.client.get(path, headers=w.viewer.auth)
    assert listed.status_code == 200
    items = listed.json()["items"]
    assert all(set(m) == MEMBER_FIELDS for m in items)
    assert [(m["user_id"], m["role"]) for m in items] == [
        (w.owner.id, "owner"),
        (extra.id, "owner"),
        (w.editor.id, "editor"),
        (w.viewer.id, "viewer"),
    ]
    assert items[0]["email"] == w.owner.email


def test_adding_a_member_checks_the_email_the_role_and_duplicates(api: Api) -> None:
    w = shared(api)
    path = f"/v1/projects/{w.project_id}/members"
    added = api.client.post(
        path, json={"email": w.stranger.email.upper(), "role": "viewer"}, headers=w.owner.auth
    )
    assert added.status_code == 201, added.text
    assert set(added.json()) == MEMBER_FIELDS
    assert (added.json()["user_id"], added.json()["role"]) == (w.stranger.id, "viewer")
    problem(add_member(api, w.owner.token, w.project_id, w.stranger.email, "editor"), 409)
    nobody = add_member(api, w.owner.token, w.project_id, "nobody@example.com", "viewer")
    assert fields_of(problem(nobody, 422)) == {"email"}
    bad_role = add_member(api, w.owner.token, w.project_id, w.stranger.email, "admin")
    assert fields_of(problem(bad_role, 422)) == {"role"}
    missing = api.client.post(path, json={"email": w.stranger.email}, headers=w.owner.auth)
    assert fields_of(problem(missing, 422)) == {"role"}


def test_the_last_owner_can_neither_leave_nor_be_demoted(api: Api) -> None:
    w = shared(api)
    path = f"/v1/projects/{w.project_id}/members"
    demote = api.client.patch(f"{path}/{w.owner.id}", json={"role": "editor"}, headers=w.owner.auth)
    problem(demote, 409)
    problem(api.client.delete(f"{path}/{w.owner.id}", headers=w.owner.auth), 409)
    promoted = api.client.patch(
        f"{path}/{w.editor.id}", json={"role": "owner"}, headers=w.owner.auth
    )
    assert promoted.json()["role"] == "owner"
    assert api.client.delete(f"{path}/{w.owner.id}", headers=w.owner.auth).status_code == 204
    problem(api.client.get(f"/v1/projects/{w.project_id}", headers=w.owner.auth), 404)


def test_member_changes_of_unknown_users_are_404_and_bad_roles_422(api: Api) -> None:
    w = shared(api)
    path = f"/v1/projects/{w.project_id}/members"
    problem(
        api.client.patch(f"{path}/{w.stranger.id}", json={"role": "viewer"}, headers=w.owner.auth),
        404,
    )
    problem(api.client.delete(f"{path}/{w.stranger.id}", headers=w.owner.auth), 404)
    bad = api.client.patch(f"{path}/{w.viewer.id}", json={"role": "boss"}, headers=w.owner.auth)
    assert fields_of(problem(bad, 422)) == {"role"}


def test_a_viewer_may_leave(api: Api) -> None:
    w = shared(api)
    path = f"/v1/projects/{w.project_id}"
    left = api.client.delete(f"{path}/members/{w.viewer.id}", headers=w.viewer.auth)
    assert left.status_code == 204
    problem(api.client.get(path, headers=w.viewer.auth), 404)


# --- idempotent creation -------------------------------------------------------------------


def test_a_repeated_create_with_the_same_key_returns_the_first_project(
    api: Api, alice: Account
) -> None:
    headers = {**alice.auth, "Idempotency-Key": "p-1"}
    first = api.client.post("/v1/projects", json={"name": "Once"}, headers=headers)
    again = api.client.post("/v1/projects", json={"name": "Once"}, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["idempotent-replayed"] == "true"
    assert again.headers["location"] == first.headers["location"]
    assert len(api.client.get("/v1/projects", headers=alice.auth).json()["items"]) == 2
    other = api.client.post("/v1/projects", json={"name": "Twice"}, headers=headers)
    assert fields_of(problem(other, 422)) == {"Idempotency-Key"}


def test_one_key_on_two_routes_is_not_a_replay(api: Api, alice: Account) -> None:
    """Keys are per user across routes: the same key and body on another route, or on
    another task's comments, is refused rather than answered with the first route's resource."""
    w = shared(api)
    from tests.unit.http.projects_world import place_task

    one = place_task(api, w.owner.token, w.project_id)
    two = place_task(api, w.owner.token, w.project_id)
    headers = {**w.owner.auth, "Idempotency-Key": "shared-key"}
    first = api.client.post(f"/v1/tasks/{one}/comments", json={"body": "b"}, headers=headers)
    assert first.status_code == 201
    second = api.client.post(f"/v1/tasks/{two}/comments", json={"body": "b"}, headers=headers)
    assert fields_of(problem(second, 422)) == {"Idempotency-Key"}
    listed = api.client.get(f"/v1/tasks/{two}/comments", headers=w.owner.auth)
    assert listed.json()["items"] == []
    task = api.client.post("/v1/tasks", json={"title": "b"}, headers=headers)
    problem(task, 422)


def test_project_ids_in_answers_are_uuid_v7(api: Api, alice: Account) -> None:
    project = create_project(api, alice.token)
    assert re.fullmatch(
        r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", project["id"]
    )
    assert api.client.get("/v1/projects", headers=bearer("ths_nothing")).status_code == 401
