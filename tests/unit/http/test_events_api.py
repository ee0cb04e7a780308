"""Events over HTTP (in-memory adapters): what each change records, activity lists, the change
feed's order, cursors, visibility and scopes, and the event stream."""

from __future__ import annotations

from typing import Any

from adapters.http.services import SERVICES
from tests.unit.http.conftest import Api, bearer
from tests.unit.http.projects_world import ALL_SCOPES, add_member, issue, shared

EVENT_FIELDS = {
    "id",
    "type",
    "occurred_at",
    "project_id",
    "resource",
    "actor",
    "request_id",
    "data",
    "changes",
}


def changes(api: Api, token: str, after: str | None = None, limit: int | None = None) -> Any:
    params: dict[str, Any] = {}
    if after is not None:
        params["after"] = after
    if limit is not None:
        params["limit"] = limit
    response = api.client.get("/v1/changes", params=params, headers=bearer(token))
    assert response.status_code == 200, response.text
    return response.json()


def walk(api: Api, token: str, after: str | None = None, limit: int = 3) -> tuple[list[Any], str]:
    """Every event from `after` on, page by page; and the last cursor."""
    seen: list[Any] = []
    while True:
        page = changes(api, token, after, limit)
        assert page["next_cursor"] is not None
        seen += page["items"]
        after = page["next_cursor"]
        if not page["items"]:
            return seen, after


def test_a_task_change_records_its_event_with_actor_request_and_changes(api: Api) -> None:
    w = shared(api)
    made = api.client.post(
        "/v1/tasks",
        json={"title": "first", "project_id": w.project_id},
        headers={**w.editor.auth, "X-Request-ID": "req-create-1"},
    )
    assert made.status_code == 201
    task = made.json()
    patched = api.client.patch(
        f"/v1/tasks/{task['id']}", json={"title": "second"}, headers=w.editor.auth
    )
    assert patched.status_code == 200
    activity = api.client.get(f"/v1/tasks/{task['id']}/activity", headers=w.viewer.auth)
    assert activity.status_code == 200, activity.text
    created, updated = activity.json()["items"]
    assert set(created) == EVENT_FIELDS
    assert created["type"] == "task.created"
    assert created["data"] == task  # the task as the API showed it
    assert created["project_id"] == w.project_id
    assert created["resource"] == {"type": "task", "id": task["id"]}
    assert created["actor"] == {
        "type": "user",
        "id": w.editor.id,
        "user_id": w.editor.id,
        "via": "http",
    }
    assert created["request_id"] == "req-create-1"
    assert created["occurred_at"].endswith("Z")
    assert updated["type"] == "task.updated"
    assert updated["changes"] == {"title": {"from": "first", "to": "second"}}
    assert updated["data"] == patched.json()


def test_an_inbox_task_event_names_the_inbox(api: Api) -> None:
    w = shared(api)
    task = api.create_task(w.owner.token)
    (event,) = api.client.get(f"/v1/tasks/{task['id']}/activity", headers=w.owner.auth).json()[
        "items"
    ]
    assert event["project_id"] == task["project_id"] == event["data"]["project_id"]


def test_deleting_a_task_with_subtasks_records_one_event_each(api: Api) -> None:
    w = shared(api)
    root = api.create_task(w.owner.token, project_id=w.project_id)
    kids = [
        api.create_task(w.owner.token, project_id=w.project_id, parent_id=root["id"])
        for _ in range(3)
    ]
    start = changes(api, w.owner.token, "now")["next_cursor"]
    assert api.client.delete(f"/v1/tasks/{root['id']}", headers=w.owner.auth).status_code == 204
    seen, _ = walk(api, w.owner.token, start)
    assert [e["type"] for e in seen] == ["task.deleted"] * 4
    assert {e["resource"]["id"] for e in seen} == {root["id"], *(k["id"] for k in kids)}
    assert seen[0]["data"]["title"] == root["title"]  # the task before the deletion


def test_an_api_key_is_the_actor_of_its_changes(api: Api) -> None:
    w = shared(api)
    key_response = issue(api, w.owner.token, ALL_SCOPES)
    key_id, secret = key_response.json()["id"], key_response.json()["key"]
    task = api.create_task(secret, project_id=w.project_id)
    (event,) = api.client.get(f"/v1/tasks/{task['id']}/activity", headers=bearer(secret)).json()[
        "items"
    ]
    assert event["actor"] == {"type": "api_key", "id": key_id, "user_id": w.owner.id, "via": "http"}


def test_project_activity_lists_members_comments_and_tasks_a_page_at_a_time(api: Api) -> None:
    w = shared(api)
    task_id = api.create_task(w.owner.token, project_id=w.project_id)["id"]
    api.client.post(f"/v1/tasks/{task_id}/comments", json={"body": "hi"}, headers=w.owner.auth)
    seen: list[str] = []
    path: str | None = f"/v1/projects/{w.project_id}/activity?limit=2"
    while path is not None:
        page = api.client.get(path, headers=w.viewer.auth)
        assert page.status_code == 200, page.text
        seen += [e["type"] for e in page.json()["items"]]
        cursor = page.json()["next_cursor"]
        path = None if cursor is None else page.headers["link"].split(">")[0].lstrip("<")
    assert seen[0] == "project.created"
    assert seen.count("member.added") == 2  # the editor and the viewer
    assert seen[-2:] == ["task.created", "comment.created"]


def test_activity_is_for_members_only(api: Api) -> None:
    w = shared(api)
    task_id = api.create_task(w.owner.token, project_id=w.project_id)["id"]
    for path in (f"/v1/tasks/{task_id}/activity", f"/v1/projects/{w.project_id}/activity"):
        assert api.client.get(path, headers=w.stranger.auth).status_code == 404
    bad = api.client.get(f"/v1/tasks/{task_id}/activity?cursor=nonsense", headers=w.owner.auth)
    assert bad.status_code == 400
    assert (
        api.client.get(f"/v1/tasks/{task_id}/activity?limit=0", headers=w.owner.auth).status_code
        == 422
    )


def test_the_feed_yields_every_event_once_in_order_and_never_a_null_cursor(api: Api) -> None:
    w = shared(api)
    ids = [api.create_task(w.owner.token, project_id=w.project_id)["id"] for _ in range(5)]
    seen, last = walk(api, w.owner.token)
    created = [e["resource"]["id"] for e in seen if e["type"] == "task.created"]
    assert created[-5:] == ids
    assert len({e["id"] for e in seen}) == len(seen)
    empty = changes(api, w.owner.token, last)
    assert empty == {"items": [], "next_cursor": last}
    more = api.create_task(w.owner.token, project_id=w.project_id)["id"]
    assert [e["resource"]["id"] for e in changes(api, w.owner.token, last)["items"]] == [more]


def test_now_starts_after_everything_so_far(api: Api) -> None:
    w = shared(api)
    api.create_task(w.owner.token, project_id=w.project_id)
    now = changes(api, w.owner.token, "now")
    assert now["items"] == []
    later = api.create_task(w.owner.token, project_id=w.project_id)["id"]
    assert [
        e["resource"]["id"] for e in changes(api, w.owner.token, now["next_cursor"])["items"]
    ] == [later]


def test_the_feed_shows_only_readable_projects_and_stops_at_removal(api: Api) -> None:
    w = shared(api)
    start = changes(api, w.viewer.token, "now")["next_cursor"]
    api.create_task(w.owner.token, project_id=str(w.other_project["id"]))  # not the viewer's
    seen_task = api.create_task(w.owner.token, project_id=w.project_id)["id"]
    removed = api.client.delete(
        f"/v1/projects/{w.project_id}/members/{w.viewer.id}", headers=w.owner.auth
    )
    assert removed.status_code == 204
    api.create_task(w.owner.token, project_id=w.project_id)  # after the removal
    seen, _ = walk(api, w.viewer.token, start)
    # The viewer can no longer read the project: only their own removal stays visible.
    assert [(e["type"], e["resource"]["id"]) for e in seen] == [("member.removed", w.viewer.id)]
    assert seen_task  # (it was visible while the viewer was a member; now it is not)


def test_a_restricted_key_sees_only_its_projects(api: Api) -> None:
    w = shared(api)
    key = w.key(ALL_SCOPES, [str(w.other_project["id"])])
    start = changes(api, key, "now")["next_cursor"]
    api.create_task(w.owner.token, project_id=w.project_id)
    other = api.create_task(w.owner.token, project_id=str(w.other_project["id"]))["id"]
    seen, _ = walk(api, key, start)
    assert [e["resource"]["id"] for e in seen] == [other]


def test_the_feed_needs_both_scopes(api: Api) -> None:
    w = shared(api)
    for missing in ("tasks:read", "projects:read"):
        key = w.key([s for s in ALL_SCOPES if s != missing])
        for path in ("/v1/changes", "/v1/changes/stream"):
            assert api.client.get(path, headers=bearer(key)).status_code == 403


def test_bad_feed_parameters_are_422(api: Api) -> None:
    w = shared(api)
    for query in ("after=nonsense", "after=1.2.3", "limit=0", "limit=501", "limit=x"):
        response = api.client.get(f"/v1/changes?{query}", headers=w.owner.auth)
        assert response.status_code == 422, query


def test_a_member_change_records_from_and_to(api: Api) -> None:
    w = shared(api)
    start = changes(api, w.owner.token, "now")["next_cursor"]
    changed = api.client.patch(
        f"/v1/projects/{w.project_id}/members/{w.viewer.id}",
        json={"role": "editor"},
        headers=w.owner.auth,
    )
    assert changed.status_code == 200
    (event,) = changes(api, w.owner.token, start)["items"]
    assert event["type"] == "member.updated"
    assert event["changes"] == {"role": {"from": "viewer", "to": "editor"}}
    assert event["data"] == changed.json()


def test_a_deleted_project_tells_its_members_of_everything_that_went(api: Api) -> None:
    w = shared(api)
    kept = api.create_task(w.owner.token, project_id=w.project_id)
    trashed = api.create_task(w.owner.token, project_id=w.project_id)
    comment = api.client.post(
        f"/v1/tasks/{kept['id']}/comments", json={"body": "hi"}, headers=w.owner.auth
    ).json()
    assert api.client.delete(f"/v1/tasks/{trashed['id']}", headers=w.owner.auth).status_code == 204
    start = changes(api, w.viewer.token, "now")["next_cursor"]
    assert (
        api.client.delete(f"/v1/projects/{w.project_id}", headers=w.owner.auth).status_code == 204
    )
    seen, _ = walk(api, w.viewer.token, start)
    # One event per resource that went, trashed tasks too, all to every former member.
    assert [(e["type"], e["resource"]["id"]) for e in seen] == [
        ("task.purged", kept["id"]),
        ("task.purged", trashed["id"]),
        ("comment.deleted", comment["id"]),
        ("member.removed", w.owner.id),
        ("member.removed", w.editor.id),
        ("member.removed", w.viewer.id),
        ("project.deleted", w.project_id),
    ]
    assert [e["type"] for e in walk(api, w.editor.token, start)[0]] == [e["type"] for e in seen]


def test_the_stream_sends_events_with_their_cursor_and_ends_when_draining(api: Api) -> None:
    w = shared(api)
    now = changes(api, w.owner.token, "now")["next_cursor"]
    made = api.create_task(w.owner.token, project_id=w.project_id)["id"]
    # The test client reads a response to its end: a draining process ends its streams after
    # what is there now.
    api.app.state[SERVICES].draining.begin()
    with api.client.stream(
        "GET", "/v1/changes/stream", params={"after": now}, headers=w.owner.auth
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        lines: list[str] = []
        for line in response.iter_lines():
            lines.append(line)
            if line.startswith("data: "):
                break
    fields = dict(line.split(": ", 1) for line in lines if line and not line.startswith(":"))
    assert fields["event"] == "task.created"
    assert made in fields["data"]
    assert changes(api, w.owner.token, fields["id"])["items"] == []


def test_an_expired_cursor_is_410(api: Api) -> None:
    import asyncio
    from datetime import UTC, datetime, timedelta

    w = shared(api)
    first = changes(api, w.owner.token, limit=1)["next_cursor"]
    api.create_task(w.owner.token, project_id=w.project_id)
    feed = api.container.change_feed()
    asyncio.run(feed.purge_before(datetime.now(UTC) + timedelta(days=1), 1000))
    response = api.client.get("/v1/changes", params={"after": first}, headers=w.owner.auth)
    assert response.status_code == 410
    assert response.json()["type"].endswith("/cursor-expired")
    assert changes(api, w.owner.token)["items"] == []  # from the oldest kept: nothing left


def test_add_member_is_recorded(api: Api) -> None:
    w = shared(api)
    other = api.account("someone@example.com")
    start = changes(api, w.owner.token, "now")["next_cursor"]
    assert add_member(api, w.owner.token, w.project_id, other.email, "viewer").status_code == 201
    (event,) = changes(api, w.owner.token, start)["items"]
    assert event["type"] == "member.added"
    assert event["data"]["user_id"] == other.id


def test_the_system_is_the_actor_of_the_workers_changes() -> None:
    from datetime import UTC, datetime

    from domain.events import EventMaker, EventType
    from domain.projects import ProjectDraft, new_project

    project = new_project(
        project_id="0190f5a0-0000-7000-8000-0000000000c1",
        draft=ProjectDraft(name="p"),
        now=datetime.now(UTC),
    )
    event = EventMaker(lambda: "e", None, datetime.now(UTC)).project(
        EventType.PROJECT_UPDATED, project
    )
    assert event.to_json()["actor"] == {
        "type": "system",
        "id": "worker",
        "user_id": None,
        "via": "system",
    }


def test_removing_a_member_records_each_task_it_unassigns(api: Api) -> None:
    w = shared(api)
    assigned = api.create_task(w.owner.token, project_id=w.project_id, assignee_id=w.editor.id)
    api.create_task(w.owner.token, project_id=w.project_id)  # assigned to nobody: no event
    start = changes(api, w.owner.token, "now")["next_cursor"]
    removed = api.client.delete(
        f"/v1/projects/{w.project_id}/members/{w.editor.id}", headers=w.owner.auth
    )
    assert removed.status_code == 204
    seen, _ = walk(api, w.owner.token, start)
    assert [(e["type"], e["resource"]["id"]) for e in seen] == [
        ("member.removed", w.editor.id),
        ("task.updated", assigned["id"]),
    ]
    assert seen[1]["changes"] == {"assignee_id": {"from": w.editor.id, "to": None}}
    assert seen[1]["data"]["version"] == assigned["version"] + 1


def test_the_trash_records_deleted_restored_and_purged(api: Api) -> None:
    w = shared(api)
    root = api.create_task(w.owner.token, project_id=w.project_id)
    kid = api.create_task(w.owner.token, project_id=w.project_id, parent_id=root["id"])
    start = changes(api, w.owner.token, "now")["next_cursor"]
    assert api.client.delete(f"/v1/tasks/{root['id']}", headers=w.owner.auth).status_code == 204
    restore = api.client.post(f"/v1/trash/{root['id']}/restore", headers=w.owner.auth)
    assert restore.status_code == 200
    assert api.client.delete(f"/v1/tasks/{kid['id']}", headers=w.owner.auth).status_code == 204
    assert api.client.delete(f"/v1/trash/{kid['id']}", headers=w.owner.auth).status_code == 204
    seen, _ = walk(api, w.owner.token, start)
    assert [(e["type"], e["resource"]["id"]) for e in seen] == [
        ("task.deleted", root["id"]),
        ("task.deleted", kid["id"]),
        ("task.restored", root["id"]),
        ("task.restored", kid["id"]),
        ("task.deleted", kid["id"]),
        ("task.purged", kid["id"]),
    ]
    assert seen[0]["data"]["version"] == root["version"]  # as it was before the deletion
    assert seen[2]["data"]["version"] == root["version"] + 2  # trashed, then restored
    # A task's activity keeps its trip through the trash; a task gone for good has none.
    activity = api.client.get(f"/v1/tasks/{root['id']}/activity", headers=w.owner.auth)
    assert [e["type"] for e in activity.json()["items"]] == [
        "task.created",
        "task.deleted",
        "task.restored",
    ]
    gone = api.client.get(f"/v1/tasks/{kid['id']}/activity", headers=w.owner.auth)
    assert gone.status_code == 404
