"""Tasks in projects over HTTP (memory adapters): the new task fields, who may do what in a
shared project (403 for a viewer, 404 for a non-member), the tree and assignee rules as 422s
naming the field, moving a subtree, and the new list filters."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from domain.projects import Membership, Project, Role
from tests.unit.http.conftest import Account, Api
from tests.unit.tasks.fakes import T0


def inbox_of(api: Api, account: Account) -> str:
    for membership in api.rows("memberships").values():
        project = api.rows("projects")[membership.project_id]
        if membership.user_id == account.id and project.inbox:
            return str(project.id)
    raise AssertionError("no inbox")


def shared_project(api: Api, owner: Account, **members: tuple[Account, Role]) -> str:
    """A project of `owner` with the given members (made in the memory database: the project
    endpoints are not this module's)."""
    project = Project(str(uuid.uuid4()), "Shared", None, False, T0, T0, 1)
    api.rows("projects")[project.id] = project
    for account, role in [(owner, Role.OWNER), *members.values()]:
        membership = Membership(project.id, account.id, role, T0)
        api.rows("memberships")[f"{project.id}/{account.id}"] = membership
    return project.id


def post(api: Api, who: Account, **body: Any) -> httpx.Response:
    body.setdefault("title", "t")
    return api.client.post("/v1/tasks", json=body, headers=who.auth)


def patch(api: Api, who: Account, task_id: str, **body: Any) -> httpx.Response:
    return api.client.patch(f"/v1/tasks/{task_id}", json=body, headers=who.auth)


def fields_of(response: httpx.Response) -> list[str]:
    return [e["field"] for e in response.json()["errors"]]


def test_a_new_task_sits_in_the_inbox_with_no_parent_or_assignee(api: Api, alice: Account) -> None:
    task = api.create_task(alice.token)
    assert task["project_id"] == inbox_of(api, alice)
    assert (task["parent_id"], task["assignee_id"]) == (None, None)
    got = api.client.get(f"/v1/tasks/{task['id']}", headers=alice.auth).json()
    assert got == task


def test_roles_in_a_shared_project(api: Api, alice: Account, bob: Account) -> None:
    carol = api.account()
    project = shared_project(api, alice, bob=(bob, Role.VIEWER))
    task = api.create_task(alice.token, project_id=project, assignee_id=bob.id)
    assert (task["project_id"], task["assignee_id"]) == (project, bob.id)
    path = f"/v1/tasks/{task['id']}"
    # The viewer reads but may not write.
    assert api.client.get(path, headers=bob.auth).status_code == 200
    assert post(api, bob, project_id=project).status_code == 403
    assert patch(api, bob, task["id"], title="x").status_code == 403
    assert api.client.delete(path, headers=bob.auth).status_code == 403
    # A non-member learns nothing.
    assert api.client.get(path, headers=carol.auth).status_code == 404
    assert post(api, carol, project_id=project).status_code == 404
    assert patch(api, carol, task["id"], title="x").status_code == 404
    assert api.client.delete(path, headers=carol.auth).status_code == 404
    listed = api.client.get("/v1/tasks", headers=bob.auth).json()["items"]
    assert [t["id"] for t in listed] == [task["id"]]
    assert api.client.get("/v1/tasks", headers=carol.auth).json()["items"] == []
    assert api.client.get(path, headers=alice.auth).json()["version"] == 1  # nothing changed


def test_tree_and_assignee_rules_answer_422_on_the_field(
    api: Api, alice: Account, bob: Account
) -> None:
    parent = api.create_task(alice.token)
    child = api.create_task(alice.token, parent_id=parent["id"])
    assert child["parent_id"] == parent["id"]
    stranger = str(uuid.uuid4())
    bad = post(api, alice, parent_id=stranger, assignee_id=bob.id)
    assert bad.status_code == 422
    assert fields_of(bad) == ["parent_id", "assignee_id"]
    cycle = patch(api, alice, parent["id"], parent_id=child["id"])
    assert (cycle.status_code, fields_of(cycle)) == (422, ["parent_id"])
    wrong_type = post(api, alice, parent_id=5)
    assert (wrong_type.status_code, fields_of(wrong_type)) == (422, ["parent_id"])
    null_project = patch(api, alice, parent["id"], project_id=None)
    assert (null_project.status_code, fields_of(null_project)) == (422, ["project_id"])
    assigned = patch(api, alice, parent["id"], assignee_id=alice.id)
    assert (assigned.status_code, assigned.json()["assignee_id"]) == (200, alice.id)
    cleared = patch(api, alice, parent["id"], assignee_id=None)
    assert (cleared.json()["assignee_id"], cleared.json()["version"]) == (None, 3)


def test_moving_a_task_moves_its_subtree(api: Api, alice: Account, bob: Account) -> None:
    project = shared_project(api, alice, bob=(bob, Role.EDITOR))
    root = api.create_task(alice.token)
    child = api.create_task(alice.token, parent_id=root["id"], assignee_id=alice.id)
    moved = patch(api, alice, root["id"], project_id=project)
    assert moved.status_code == 200, moved.text
    assert (moved.json()["project_id"], moved.json()["version"]) == (project, 2)
    after = api.client.get(f"/v1/tasks/{child['id']}", headers=bob.auth).json()
    assert (after["project_id"], after["parent_id"], after["version"]) == (
        project,
        root["id"],
        2,
    )
    # Bob edits the project but is no member of Alice's inbox: 404 for the target.
    back = patch(api, bob, root["id"], project_id=inbox_of(api, alice))
    assert back.status_code == 404


def test_list_filters(api: Api, alice: Account, bob: Account) -> None:
    project = shared_project(api, alice, bob=(bob, Role.EDITOR))
    mine = api.create_task(alice.token, assignee_id=alice.id)
    top = api.create_task(alice.token, project_id=project, assignee_id=bob.id)
    sub = api.create_task(alice.token, project_id=project, parent_id=top["id"])

    def ids(**query: str) -> set[str]:
        response = api.client.get("/v1/tasks", params=query, headers=alice.auth)
        assert response.status_code == 200, response.text
        return {t["id"] for t in response.json()["items"]}

    assert ids() == {mine["id"], top["id"], sub["id"]}
    assert ids(project_id=project) == {top["id"], sub["id"]}
    assert ids(project_id=str(uuid.uuid4())) == set()
    assert ids(assignee_id="me") == {mine["id"]}
    assert ids(assignee_id=bob.id) == {top["id"]}
    assert ids(assignee_id="none") == {sub["id"]}
    assert ids(parent_id="none") == {mine["id"], top["id"]}
    assert ids(parent_id=top["id"]) == {sub["id"]}
    bad = api.client.get(
        "/v1/tasks", params={"assignee_id": "bob", "parent_id": "x"}, headers=alice.auth
    )
    assert (bad.status_code, fields_of(bad)) == (422, ["assignee_id", "parent_id"])
