"""Who gets what on every project, member and comment endpoint: owner, editor, viewer, a
non-member, a key restricted to another project, and a key lacking the endpoint's scope.
A role too low or a missing scope is 403; a project the caller cannot reach is 404."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import httpx
import pytest

from tests.unit.http.conftest import Api, bearer
from tests.unit.http.projects_world import Shared, place_task, shared

CALLERS = ("owner", "editor", "viewer", "stranger", "restricted", "scopeless")


@dataclass(frozen=True)
class Endpoint:
    scope: str  # the scope a `scopeless` caller lacks
    send: Callable[[Shared, str], httpx.Response]
    answers: dict[str, int]


def _comment(w: Shared, author: str) -> tuple[str, str]:
    task_id = place_task(w.api, w.owner.token, w.project_id)
    made = w.api.client.post(
        f"/v1/tasks/{task_id}/comments",
        json={"body": "hello"},
        headers=bearer(getattr(w, author).token),
    )
    assert made.status_code == 201, made.text
    return task_id, str(made.json()["id"])


def _delete_comment(author: str) -> Callable[[Shared, str], httpx.Response]:
    def send(w: Shared, token: str) -> httpx.Response:
        task_id, comment_id = _comment(w, author)
        return w.api.client.delete(
            f"/v1/tasks/{task_id}/comments/{comment_id}", headers=bearer(token)
        )

    return send


READERS = {"owner": 200, "editor": 200, "viewer": 200}
DENIED = {"stranger": 404, "restricted": 404, "scopeless": 403}

ENDPOINTS: dict[str, Endpoint] = {
    "getProject": Endpoint(
        "projects:read",
        lambda w, t: w.api.client.get(f"/v1/projects/{w.project_id}", headers=bearer(t)),
        {**READERS, **DENIED},
    ),
    "updateProject": Endpoint(
        "projects:write",
        lambda w, t: w.api.client.patch(
            f"/v1/projects/{w.project_id}", json={"name": "Renamed"}, headers=bearer(t)
        ),
        {"owner": 200, "editor": 403, "viewer": 403, **DENIED},
    ),
    "deleteProject": Endpoint(
        "projects:write",
        lambda w, t: w.api.client.delete(f"/v1/projects/{w.project_id}", headers=bearer(t)),
        {"owner": 204, "editor": 403, "viewer": 403, **DENIED},
    ),
    "listMembers": Endpoint(
        "projects:read",
        lambda w, t: w.api.client.get(f"/v1/projects/{w.project_id}/members", headers=bearer(t)),
        {**READERS, **DENIED},
    ),
    "addMember": Endpoint(
        "projects:write",
        lambda w, t: w.api.client.post(
            f"/v1/projects/{w.project_id}/members",
            json={"email": w.stranger.email, "role": "viewer"},
            headers=bearer(t),
        ),
        {"owner": 201, "editor": 403, "viewer": 403, **DENIED},
    ),
    "updateMember": Endpoint(
        "projects:write",
        lambda w, t: w.api.client.patch(
            f"/v1/projects/{w.project_id}/members/{w.editor.id}",
            json={"role": "viewer"},
            headers=bearer(t),
        ),
        {"owner": 200, "editor": 403, "viewer": 403, **DENIED},
    ),
    "removeMember": Endpoint(
        "projects:write",
        lambda w, t: w.api.client.delete(
            f"/v1/projects/{w.project_id}/members/{w.editor.id}", headers=bearer(t)
        ),
        # The editor removing themself is leaving: allowed.
        {"owner": 204, "editor": 204, "viewer": 403, **DENIED},
    ),
    "createComment": Endpoint(
        "tasks:write",
        lambda w, t: w.api.client.post(
            f"/v1/tasks/{place_task(w.api, w.owner.token, w.project_id)}/comments",
            json={"body": "hi"},
            headers=bearer(t),
        ),
        {"owner": 201, "editor": 201, "viewer": 403, **DENIED},
    ),
    "listComments": Endpoint(
        "tasks:read",
        lambda w, t: w.api.client.get(
            f"/v1/tasks/{place_task(w.api, w.owner.token, w.project_id)}/comments",
            headers=bearer(t),
        ),
        {**READERS, **DENIED},
    ),
    # A comment of the editor: its author and an owner may delete it.
    "deleteComment": Endpoint(
        "tasks:write",
        _delete_comment("editor"),
        {"owner": 204, "editor": 204, "viewer": 403, **DENIED},
    ),
    # A comment of the owner: the editor is neither its author nor an owner.
    "deleteOthersComment": Endpoint(
        "tasks:write",
        _delete_comment("owner"),
        {"owner": 204, "editor": 403, "viewer": 403, **DENIED},
    ),
}


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("endpoint", sorted(ENDPOINTS))
def test_role_matrix(api: Api, endpoint: str, caller: str) -> None:
    spec = ENDPOINTS[endpoint]
    w = shared(api)
    token = w.caller(caller, spec.scope)
    response = spec.send(w, token)
    assert response.status_code == spec.answers[caller], response.text
    if response.status_code >= 400:
        assert response.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize("endpoint", sorted(ENDPOINTS))
def test_a_key_restricted_to_the_project_acts_with_its_users_role(api: Api, endpoint: str) -> None:
    spec = ENDPOINTS[endpoint]
    w = shared(api)
    key = w.key(["tasks:read", "tasks:write", "projects:read", "projects:write"], [w.project_id])
    assert spec.send(w, key).status_code == spec.answers["owner"]


def test_a_restricted_keys_rights_follow_its_users_role_at_use_time(api: Api) -> None:
    w = shared(api)
    response = w.api.client.post(
        "/v1/api-keys",
        json={
            "name": "k",
            "scopes": ["projects:read", "projects:write"],
            "project_ids": [w.project_id],
        },
        headers=bearer(w.editor.token),
    )
    assert response.status_code == 201, response.text
    key = response.json()["key"]
    rename = {"name": "By the key"}
    path = f"/v1/projects/{w.project_id}"
    assert w.api.client.patch(path, json=rename, headers=bearer(key)).status_code == 403
    promote = w.api.client.patch(
        f"{path}/members/{w.editor.id}", json={"role": "owner"}, headers=w.owner.auth
    )
    assert promote.status_code == 200
    assert w.api.client.patch(path, json=rename, headers=bearer(key)).status_code == 200
    removed = w.api.client.delete(f"{path}/members/{w.editor.id}", headers=w.owner.auth)
    assert removed.status_code == 204
    assert w.api.client.get(path, headers=bearer(key)).status_code == 404
