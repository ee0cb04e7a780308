"""The trash over HTTP on the in-memory twins: a deleted task (and its subtasks) leaves every
read, the trash lists it for every member, editors and owners restore it or delete it for good."""

from __future__ import annotations

from typing import Any

from tests.unit.http.conftest import ApiFactory, bearer
from tests.unit.http.projects_world import Shared, shared


def _task(s: Shared, token: str, **extra: Any) -> dict[str, Any]:
    response = s.api.client.post(
        "/v1/tasks", json={"title": "t", "project_id": s.project_id, **extra}, headers=bearer(token)
    )
    assert response.status_code == 201, response.text
    made: dict[str, Any] = response.json()
    return made


def _trash(s: Shared, token: str, **params: str) -> list[str]:
    response = s.api.client.get("/v1/trash", params=params, headers=bearer(token))
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


def test_a_deleted_subtree_leaves_every_read_and_comes_back_whole(make_api: ApiFactory) -> None:
    s = shared(make_api())
    client, editor = s.api.client, bearer(s.editor.token)
    root = _task(s, s.editor.token)
    child = _task(s, s.editor.token, parent_id=root["id"])
    comment = client.post(f"/v1/tasks/{child['id']}/comments", json={"body": "c"}, headers=editor)
    assert comment.status_code == 201

    stale = {**editor, "If-Match": f'"{root["id"]}.0"'}
    assert client.delete(f"/v1/tasks/{root['id']}", headers=stale).status_code == 412
    assert client.delete(f"/v1/tasks/{root['id']}", headers=editor).status_code == 204
    for gone in (root, child):
        assert client.get(f"/v1/tasks/{gone['id']}", headers=editor).status_code == 404
        patched = client.patch(f"/v1/tasks/{gone['id']}", json={"title": "x"}, headers=editor)
        assert patched.status_code == 404
        comments = client.get(f"/v1/tasks/{gone['id']}/comments", headers=editor)
        assert comments.status_code == 404
    listed = client.get("/v1/tasks", params={"project_id": s.project_id}, headers=editor)
    assert listed.json()["items"] == []
    under = client.post(
        "/v1/tasks", json={"title": "u", "parent_id": child["id"]}, headers=editor
    )  # a trashed task is no parent
    assert under.status_code == 422

    # Every member sees the trash (viewers too), newest first, each with deleted_at.
    page = client.get("/v1/trash", headers=bearer(s.viewer.token)).json()
    assert {item["id"] for item in page["items"]} == {root["id"], child["id"]}
    assert all(item["deleted_at"] and item["version"] == 2 for item in page["items"])
    assert _trash(s, s.stranger.token) == []

    # Viewers may not restore; the child waits for its parent (409); the root brings it back.
    viewer_restore = client.post(f"/v1/trash/{root['id']}/restore", headers=bearer(s.viewer.token))
    assert viewer_restore.status_code == 403
    stranger_restore = client.post(
        f"/v1/trash/{root['id']}/restore", headers=bearer(s.stranger.token)
    )
    assert stranger_restore.status_code == 404
    assert client.post(f"/v1/trash/{child['id']}/restore", headers=editor).status_code == 409
    restored = client.post(f"/v1/trash/{root['id']}/restore", headers=editor)
    assert restored.status_code == 200, restored.text
    assert restored.json()["version"] == 3
    assert restored.headers["ETag"] == f'"{root["id"]}.3"'
    again = client.get(f"/v1/tasks/{child['id']}", headers=editor)
    assert again.status_code == 200
    assert again.json()["version"] == 3
    assert len(client.get(f"/v1/tasks/{child['id']}/comments", headers=editor).json()["items"]) == 1
    assert _trash(s, s.owner.token) == []
    assert client.post(f"/v1/trash/{root['id']}/restore", headers=editor).status_code == 404


def test_a_subtask_trashed_on_its_own_stays_when_its_parent_comes_back(
    make_api: ApiFactory,
) -> None:
    s = shared(make_api())
    client, owner = s.api.client, bearer(s.owner.token)
    root = _task(s, s.owner.token)
    first = _task(s, s.owner.token, parent_id=root["id"])
    second = _task(s, s.owner.token, parent_id=root["id"])
    assert client.delete(f"/v1/tasks/{first['id']}", headers=owner).status_code == 204
    assert client.delete(f"/v1/tasks/{root['id']}", headers=owner).status_code == 204
    assert client.post(f"/v1/trash/{root['id']}/restore", headers=owner).status_code == 200
    assert client.get(f"/v1/tasks/{second['id']}", headers=owner).status_code == 200
    assert _trash(s, s.owner.token) == [first["id"]]
    assert client.post(f"/v1/trash/{first['id']}/restore", headers=owner).status_code == 200


def test_delete_for_good_and_paging(make_api: ApiFactory) -> None:
    s = shared(make_api())
    client, owner = s.api.client, bearer(s.owner.token)
    made = [_task(s, s.owner.token)["id"] for _ in range(3)]
    for task_id in made:
        assert client.delete(f"/v1/tasks/{task_id}", headers=owner).status_code == 204
    first = client.get("/v1/trash", params={"limit": "2"}, headers=owner)
    assert len(first.json()["items"]) == 2
    assert 'rel="next"' in first.headers["Link"]
    cursor = first.json()["next_cursor"]
    rest = client.get("/v1/trash", params={"limit": "2", "cursor": cursor}, headers=owner).json()
    assert rest["next_cursor"] is None
    seen = [item["id"] for item in first.json()["items"] + rest["items"]]
    assert sorted(seen) == sorted(made)
    other_filter = client.get(
        "/v1/trash", params={"cursor": cursor, "project_id": s.project_id}, headers=owner
    )
    assert other_filter.status_code == 400  # a cursor continues only its own list
    assert _trash(s, s.owner.token, project_id=str(s.other_project["id"])) == []

    viewer = bearer(s.viewer.token)
    assert client.delete(f"/v1/trash/{made[0]}", headers=viewer).status_code == 403
    assert client.delete(f"/v1/trash/{made[0]}", headers=bearer(s.editor.token)).status_code == 204
    assert client.delete(f"/v1/trash/{made[0]}", headers=owner).status_code == 404
    assert made[0] not in _trash(s, s.owner.token)
    # A key restricted to another project sees none of this project's trash.
    assert _trash(s, s.caller("restricted")) == []


def test_deleting_the_project_removes_its_trash(make_api: ApiFactory) -> None:
    s = shared(make_api())
    client, owner = s.api.client, bearer(s.owner.token)
    task = _task(s, s.owner.token)
    assert client.delete(f"/v1/tasks/{task['id']}", headers=owner).status_code == 204
    assert client.delete(f"/v1/projects/{s.project_id}", headers=owner).status_code == 204
    assert _trash(s, s.owner.token) == []
    assert client.post(f"/v1/trash/{task['id']}/restore", headers=owner).status_code == 404


def test_a_move_carries_trashed_subtasks_along(make_api: ApiFactory) -> None:
    s = shared(make_api())
    client, owner = s.api.client, bearer(s.owner.token)
    root = _task(s, s.owner.token)
    child = _task(s, s.owner.token, parent_id=root["id"])
    assert client.delete(f"/v1/tasks/{child['id']}", headers=owner).status_code == 204
    target = str(s.other_project["id"])
    moved = client.patch(f"/v1/tasks/{root['id']}", json={"project_id": target}, headers=owner)
    assert moved.status_code == 200, moved.text
    assert _trash(s, s.owner.token, project_id=target) == [child["id"]]
    back = client.post(f"/v1/trash/{child['id']}/restore", headers=owner)
    assert back.status_code == 200, back.text
    assert back.json()["project_id"] == target
    assert back.json()["parent_id"] == root["id"]
