"""Webhooks over HTTP: shapes, the secret shown once, validation naming fields, ownership,
conditional requests, ping, the deliveries list and detail, and redelivery."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from domain.webhooks import SendResult
from tests.unit.http.conftest import Account, Api
from tests.unit.http.projects_world import create_project
from tests.unit.webhooks.support import RecordingSender

WEBHOOK_FIELDS = {
    "id",
    "url",
    "events",
    "project_id",
    "description",
    "enabled",
    "disabled_reason",
    "created_at",
    "updated_at",
    "version",
}
URL = "https://hooks.example.com/taskhub"


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    return body


def _create(api: Api, who: Account, **fields: Any) -> httpx.Response:
    body = {"url": URL, "events": ["task.*"], **fields}
    return api.client.post("/v1/webhooks", json=body, headers=who.auth)


def test_create_shows_the_secret_once(api: Api, alice: Account) -> None:
    response = _create(api, alice, description="ci")
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == WEBHOOK_FIELDS | {"secret"}
    assert body["secret"].startswith("whsec_")
    assert response.headers["location"] == f"/v1/webhooks/{body['id']}"
    assert response.headers["etag"] == f'"{body["id"]}.1"'
    listed = api.client.get("/v1/webhooks", headers=alice.auth).json()["items"]
    assert [set(item) for item in listed] == [WEBHOOK_FIELDS]
    one = api.client.get(f"/v1/webhooks/{body['id']}", headers=alice.auth)
    assert "secret" not in one.json()
    assert body["secret"] not in one.text
    assert body["secret"] not in str(api.rows("webhooks"))


def test_bad_input_is_422_naming_the_field(api: Api, alice: Account) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"url": "http://hooks.example.com/"}, "url"),
        ({"url": "https://u:p@hooks.example.com/"}, "url"),
        ({"url": "https://10.0.0.7/hook"}, "url"),
        ({"url": "https://" + "a" * 2000 + ".com"}, "url"),
        ({"events": ["task.exploded"]}, "events[0]"),
        ({"events": []}, "events"),
        ({"project_id": "0190f5a0-0000-7000-8000-000000000001"}, "project_id"),
    ]
    for fields, field in cases:
        body = problem(_create(api, alice, **fields), 422)
        assert field in {e["field"] for e in body["errors"]}, (fields, body)
    assert api.rows("webhooks") == {}


def test_http_and_private_targets_when_the_server_allows_them(make_api: Any) -> None:
    api = make_api(WEBHOOK_ALLOW_HTTP="true", WEBHOOK_ALLOW_PRIVATE_TARGETS="true")
    alice = api.account()
    assert _create(api, alice, url="http://127.0.0.1:9/hook").status_code == 201


def test_another_users_webhook_is_404_and_the_scope_is_needed(
    api: Api, alice: Account, bob: Account
) -> None:
    hook = _create(api, alice).json()
    for method, path in [
        ("GET", f"/v1/webhooks/{hook['id']}"),
        ("PATCH", f"/v1/webhooks/{hook['id']}"),
        ("DELETE", f"/v1/webhooks/{hook['id']}"),
        ("POST", f"/v1/webhooks/{hook['id']}/ping"),
        ("POST", f"/v1/webhooks/{hook['id']}/rotate-secret"),
        ("GET", f"/v1/webhooks/{hook['id']}/deliveries"),
    ]:
        kwargs: dict[str, Any] = {"json": {}} if method == "PATCH" else {}
        problem(api.client.request(method, path, headers=bob.auth, **kwargs), 404)
    key = api.key(alice.token, ["tasks:read"])
    problem(api.client.get("/v1/webhooks", headers={"Authorization": f"Bearer {key}"}), 403)


def test_patch_with_if_match_and_delete(api: Api, alice: Account) -> None:
    hook = _create(api, alice).json()
    path = f"/v1/webhooks/{hook['id']}"
    changed = api.client.patch(
        path,
        json={"enabled": False, "events": ["comment.*"]},
        headers={**alice.auth, "If-Match": f'"{hook["id"]}.1"'},
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["enabled"], changed.json()["version"]) == (False, 2)
    stale = api.client.patch(
        path, json={"enabled": True}, headers={**alice.auth, "If-Match": f'"{hook["id"]}.1"'}
    )
    problem(stale, 412)
    problem(api.client.patch(path, json={"secret": "x"}, headers=alice.auth), 422)
    cached = api.client.get(path, headers={**alice.auth, "If-None-Match": changed.headers["etag"]})
    assert cached.status_code == 304
    assert api.client.delete(path, headers=alice.auth).status_code == 204
    problem(api.client.get(path, headers=alice.auth), 404)


def test_project_scoped_webhook_needs_a_readable_project(
    api: Api, alice: Account, bob: Account
) -> None:
    project = create_project(api, alice.token)
    assert _create(api, alice, project_id=project["id"]).status_code == 201
    body = problem(_create(api, bob, project_id=project["id"]), 422)
    assert [e["field"] for e in body["errors"]] == ["project_id"]


def _deliver(api: Api, sender: RecordingSender) -> int:
    api.container.webhook_sender.override(sender)
    try:
        step = api.container.deliver_webhooks().step
        return asyncio.run(step())
    finally:
        api.container.webhook_sender.reset_override()


def test_ping_deliveries_detail_and_redeliver(api: Api, alice: Account) -> None:
    hook = _create(api, alice).json()
    base = f"/v1/webhooks/{hook['id']}"
    ping = api.client.post(f"{base}/ping", headers=alice.auth)
    assert ping.status_code == 202, ping.text
    delivery = ping.json()
    assert (delivery["status"], delivery["event_type"]) == ("pending", "webhook.ping")
    sender = RecordingSender(answers=[SendResult(500, "answered 500", "oops", 12)])
    assert _deliver(api, sender) == 1
    assert sender.sent[0].headers["webhook-id"] == delivery["id"]
    listed = api.client.get(f"{base}/deliveries?status=pending", headers=alice.auth).json()
    assert [d["id"] for d in listed["items"]] == [delivery["id"]]
    assert api.client.get(f"{base}/deliveries?status=failed", headers=alice.auth).json() == {
        "items": [],
        "next_cursor": None,
    }
    problem(api.client.get(f"{base}/deliveries?status=lost", headers=alice.auth), 422)
    problem(api.client.get(f"{base}/deliveries?limit=0", headers=alice.auth), 422)
    problem(api.client.get(f"{base}/deliveries?cursor=nope", headers=alice.auth), 400)
    detail = api.client.get(f"{base}/deliveries/{delivery['id']}", headers=alice.auth).json()
    assert detail["attempt_count"] == 1
    assert [(a["response_status"], a["error"]) for a in detail["attempts"]] == [
        (500, "answered 500")
    ]
    again = api.client.post(f"{base}/deliveries/{delivery['id']}/redeliver", headers=alice.auth)
    assert again.status_code == 202, again.text
    assert _deliver(api, RecordingSender()) == 1
    detail = api.client.get(f"{base}/deliveries/{delivery['id']}", headers=alice.auth).json()
    assert detail["status"] == "succeeded"
    assert len(detail["attempts"]) == 2


def test_rotate_secret_answers_the_new_one(api: Api, alice: Account) -> None:
    hook = _create(api, alice).json()
    rotated = api.client.post(f"/v1/webhooks/{hook['id']}/rotate-secret", headers=alice.auth)
    assert rotated.status_code == 200, rotated.text
    assert set(rotated.json()) == {"secret"}
    assert rotated.json()["secret"] != hook["secret"]


def test_the_worker_fans_out_the_change_feed_and_delivers(api: Api, alice: Account) -> None:
    project = create_project(api, alice.token)
    hook = _create(api, alice, events=["comment.*"]).json()
    # Real changes: their events reach the webhook through the change feed.
    task = api.client.post(
        "/v1/tasks", json={"title": "t", "project_id": project["id"]}, headers=alice.auth
    ).json()
    comment = api.client.post(
        f"/v1/tasks/{task['id']}/comments", json={"body": "hello"}, headers=alice.auth
    ).json()
    sender = RecordingSender()
    api.container.webhook_sender.override(sender)
    try:
        asyncio.run(api.container.worker().tick())
    finally:
        api.container.webhook_sender.reset_override()
    [sent] = sender.sent
    assert sent.url == URL
    payload = json.loads(sent.body)
    assert payload["type"] == "comment.created"
    assert payload["data"]["resource"] == {"type": "comment", "id": comment["id"]}
    assert payload["data"]["data"]["body"] == "hello"
    listed = api.client.get(f"/v1/webhooks/{hook['id']}/deliveries", headers=alice.auth).json()
    assert [(d["event_type"], d["status"]) for d in listed["items"]] == [
        ("comment.created", "succeeded")
    ]
