"""API key lineage over HTTP: created_by_key_id, a key's expiry bounded by its issuer's,
revocation of everything a key issued, and the key list as a cursor list."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.unit.http.conftest import Account, Api, bearer
from tests.unit.http.test_identity_api import problem

MANAGE = ["keys:manage", "tasks:read"]


def at(delta: timedelta) -> str:
    return (datetime.now(UTC) + delta).isoformat().replace("+00:00", "Z")


def issued(api: Api, token: str, **body: Any) -> dict[str, Any]:
    body.setdefault("name", "key")
    body.setdefault("scopes", MANAGE)
    response = api.client.post("/v1/api-keys", json=body, headers=bearer(token))
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def test_a_key_issued_by_a_key_names_its_issuer(api: Api, alice: Account) -> None:
    parent = issued(api, alice.token)
    child = issued(api, parent["key"], scopes=["tasks:read"])
    assert parent["created_by_key_id"] is None
    assert child["created_by_key_id"] == parent["id"]
    listed = api.client.get("/v1/api-keys", headers=alice.auth).json()["items"]
    assert {k["id"]: k["created_by_key_id"] for k in listed} == {
        parent["id"]: None,
        child["id"]: parent["id"],
    }


def test_a_key_cannot_outlive_its_issuer(api: Api, alice: Account) -> None:
    parent = issued(api, alice.token, expires_at=at(timedelta(hours=1)))
    later = api.client.post(
        "/v1/api-keys",
        json={"name": "c", "scopes": ["tasks:read"], "expires_at": at(timedelta(hours=2))},
        headers=bearer(parent["key"]),
    )
    never = api.client.post(
        "/v1/api-keys", json={"name": "c", "scopes": ["tasks:read"]}, headers=bearer(parent["key"])
    )
    for response in (later, never):
        body = problem(response, 422)
        assert [e["field"] for e in body["errors"]] == ["expires_at"]
    assert len(api.rows("api_keys")) == 1
    # Up to the issuer's own expiry is fine.
    child = issued(api, parent["key"], scopes=["tasks:read"], expires_at=parent["expires_at"])
    assert child["expires_at"] == parent["expires_at"]


def test_an_issuer_without_expiry_may_issue_keys_without_one(api: Api, alice: Account) -> None:
    parent = issued(api, alice.token)
    assert issued(api, parent["key"], scopes=["tasks:read"])["expires_at"] is None


def test_revoking_a_key_revokes_every_key_it_issued_at_once(api: Api, alice: Account) -> None:
    parent = issued(api, alice.token)
    child = issued(api, parent["key"])
    grandchild = issued(api, child["key"], scopes=["tasks:read"])
    sibling = issued(api, alice.token, scopes=["tasks:read"])
    # Each key is used first, so a resolved caller sits in the principal cache.
    for key in (parent, child, grandchild, sibling):
        assert api.client.get("/v1/tasks", headers=bearer(key["key"])).status_code == 200

    response = api.client.delete(f"/v1/api-keys/{parent['id']}", headers=alice.auth)
    assert response.status_code == 204

    for key in (parent, child, grandchild):
        assert api.client.get("/v1/tasks", headers=bearer(key["key"])).status_code == 401
    assert api.client.get("/v1/tasks", headers=bearer(sibling["key"])).status_code == 200
    listed = api.client.get("/v1/api-keys", headers=alice.auth).json()["items"]
    assert [k["id"] for k in listed] == [sibling["id"]]
    # Revoking a descendant again is a 404, like any revoked key.
    gone = api.client.delete(f"/v1/api-keys/{child['id']}", headers=alice.auth)
    assert gone.status_code == 404


def test_the_key_list_is_a_cursor_list_newest_first(api: Api, alice: Account) -> None:
    ids = [issued(api, alice.token, name=f"k{i}")["id"] for i in range(5)]
    seen: list[str] = []
    url = "/v1/api-keys?limit=2"
    pages = 0
    while url:
        response = api.client.get(url, headers=alice.auth)
        assert response.status_code == 200, response.text
        body = response.json()
        assert len(body["items"]) <= 2
        seen += [k["id"] for k in body["items"]]
        pages += 1
        if body["next_cursor"] is None:
            assert "link" not in response.headers
            break
        link = response.headers["link"]
        assert link.endswith('>; rel="next"')
        url = link[1 : link.index(">")]
        assert "limit=2" in url
    assert seen == list(reversed(ids))
    assert pages == 3


def test_the_key_list_defaults_to_fifty(api: Api, alice: Account) -> None:
    for i in range(51):
        issued(api, alice.token, name=f"k{i}")
    body = api.client.get("/v1/api-keys", headers=alice.auth).json()
    assert len(body["items"]) == 50
    assert body["next_cursor"] is not None


@pytest.mark.parametrize("limit", ["0", "201", "abc", "-1"])
def test_a_bad_limit_is_422_naming_limit(api: Api, alice: Account, limit: str) -> None:
    response = api.client.get(f"/v1/api-keys?limit={limit}", headers=alice.auth)
    body = problem(response, 422)
    assert [e["field"] for e in body["errors"]] == ["limit"]


def test_a_bad_or_foreign_cursor_is_400(api: Api, alice: Account) -> None:
    for i in range(3):
        issued(api, alice.token, name=f"k{i}")
    cursor = api.client.get("/v1/api-keys?limit=1", headers=alice.auth).json()["next_cursor"]
    for task in range(3):
        api.create_task(alice.token, title=f"t{task}")
    task_cursor = api.client.get("/v1/tasks?limit=1", headers=alice.auth).json()["next_cursor"]
    for bad in (
        "nonsense",
        cursor[:-2] + ("A" if cursor[-2] != "A" else "B") + cursor[-1],
        task_cursor,
    ):
        response = api.client.get(f"/v1/api-keys?cursor={bad}", headers=alice.auth)
        problem(response, 400)


def test_issuing_beyond_the_key_cap_is_409_until_a_key_is_revoked(make_api: Any) -> None:
    api: Api = make_api(MAX_API_KEYS_PER_USER="3")
    alice = api.account()
    keys = [issued(api, alice.token, name=f"k{i}") for i in range(3)]
    response = api.client.post(
        "/v1/api-keys", json={"name": "one more", "scopes": ["tasks:read"]}, headers=alice.auth
    )
    body = problem(response, 409)
    assert body["type"].endswith("/limit-reached")
    assert "3 active API keys" in body["detail"]
    assert len(api.rows("api_keys")) == 3
    # The cap is per account, and a revoked key frees its place.
    bob = api.account()
    issued(api, bob.token)
    assert api.client.delete(f"/v1/api-keys/{keys[0]['id']}", headers=alice.auth).status_code == 204
    issued(api, alice.token, name="again")
