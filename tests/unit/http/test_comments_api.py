"""Comments over HTTP: the answer's shape, the body rule, oldest-first pages with cursors and
Link, and deletion."""

from __future__ import annotations

from typing import Any

import httpx

from tests.unit.http.conftest import Api
from tests.unit.http.projects_world import Shared, place_task, shared

COMMENT_FIELDS = {"id", "task_id", "author_id", "body", "created_at"}


def comment(w: Shared, task_id: str, body: Any, token: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token or w.owner.token}"}
    return w.api.client.post(f"/v1/tasks/{task_id}/comments", json={"body": body}, headers=headers)


def test_a_comment_keeps_its_body_as_given(api: Api) -> None:
    w = shared(api)
    task_id = place_task(api, w.owner.token, w.project_id)
    made = comment(w, task_id, "  spaced  ", w.editor.token)
    assert made.status_code == 201, made.text
    body = made.json()
    assert set(body) == COMMENT_FIELDS
    assert (body["task_id"], body["author_id"], body["body"]) == (
        task_id,
        w.editor.id,
        "  spaced  ",
    )
    assert body["created_at"].endswith("Z")


def test_bad_bodies_are_422_on_body(api: Api) -> None:
    w = shared(api)
    task_id = place_task(api, w.owner.token, w.project_id)
    for bad in ("", "x" * 10_001, 5, None):
        response = comment(w, task_id, bad)
        assert response.status_code == 422, bad
        assert {e["field"] for e in response.json()["errors"]} == {"body"}
    assert comment(w, task_id, "x" * 10_000).status_code == 201


def test_comments_come_oldest_first_a_page_at_a_time(api: Api) -> None:
    w = shared(api)
    task_id = place_task(api, w.owner.token, w.project_id)
    made = [comment(w, task_id, f"c{i}").json()["id"] for i in range(7)]
    seen: list[str] = []
    path: str | None = f"/v1/tasks/{task_id}/comments?limit=3"
    pages = 0
    while path is not None:
        page = api.client.get(path, headers=w.viewer.auth)
        assert page.status_code == 200, page.text
        body = page.json()
        seen += [c["id"] for c in body["items"]]
        pages += 1
        if body["next_cursor"] is None:
            assert "link" not in page.headers
            path = None
        else:
            link = page.headers["link"]
            assert link.endswith('>; rel="next"')
            path = link[1 : link.index(">")]
            assert "limit=3" in path
    assert seen == made
    assert pages == 3


def test_a_cursor_of_another_tasks_list_or_a_bad_limit_is_refused(api: Api) -> None:
    w = shared(api)
    one = place_task(api, w.owner.token, w.project_id)
    two = place_task(api, w.owner.token, w.project_id)
    for _ in range(2):
        comment(w, one, "c")
    cursor = api.client.get(
        f"/v1/tasks/{one}/comments", params={"limit": 1}, headers=w.owner.auth
    ).json()["next_cursor"]
    assert cursor is not None
    other = api.client.get(
        f"/v1/tasks/{two}/comments", params={"cursor": cursor}, headers=w.owner.auth
    )
    assert other.status_code == 400
    for params in ({"cursor": "garbage"}, {"limit": "0"}, {"limit": "201"}, {"limit": "x"}):
        answer = api.client.get(f"/v1/tasks/{one}/comments", params=params, headers=w.owner.auth)
        assert answer.status_code in {400, 422}, params
        if answer.status_code == 422:
            assert {e["field"] for e in answer.json()["errors"]} == {"limit"}


def test_a_deleted_comment_is_gone_and_a_comment_of_another_task_is_404(api: Api) -> None:
    w = shared(api)
    one = place_task(api, w.owner.token, w.project_id)
    two = place_task(api, w.owner.token, w.project_id)
    made = comment(w, one, "bye").json()["id"]
    wrong_task = api.client.delete(f"/v1/tasks/{two}/comments/{made}", headers=w.owner.auth)
    assert wrong_task.status_code == 404
    assert (
        api.client.delete(f"/v1/tasks/{one}/comments/{made}", headers=w.owner.auth).status_code
        == 204
    )
    again = api.client.delete(f"/v1/tasks/{one}/comments/{made}", headers=w.owner.auth)
    assert again.status_code == 404
    assert api.client.get(f"/v1/tasks/{one}/comments", headers=w.owner.auth).json()["items"] == []


def test_comments_of_an_unknown_task_are_404(api: Api) -> None:
    w = shared(api)
    unknown = "01890000-0000-7000-8000-000000000000"
    assert comment(w, unknown, "x").status_code == 404
    assert api.client.get(f"/v1/tasks/{unknown}/comments", headers=w.owner.auth).status_code == 404
    head = api.client.head(
        f"/v1/tasks/{place_task(api, w.owner.token, w.project_id)}/comments", headers=w.owner.auth
    )
    assert head.status_code == 200
