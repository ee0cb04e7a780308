"""A shared project over the public API: an owner, an editor, a viewer, a stranger, and the
credentials a role matrix needs (a key restricted to another project, keys lacking a scope)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.unit.http.conftest import Account, Api, bearer, fresh_email

ALL_SCOPES = [
    "tasks:read",
    "tasks:write",
    "keys:manage",
    "projects:read",
    "projects:write",
    "webhooks:manage",
]


def create_project(api: Api, token: str, name: str = "Shared", **extra: Any) -> dict[str, Any]:
    response = api.client.post("/v1/projects", json={"name": name, **extra}, headers=bearer(token))
    assert response.status_code == 201, response.text
    project: dict[str, Any] = response.json()
    return project


def add_member(api: Api, token: str, project_id: str, email: str, role: str) -> httpx.Response:
    return api.client.post(
        f"/v1/projects/{project_id}/members",
        json={"email": email, "role": role},
        headers=bearer(token),
    )


def place_task(api: Api, token: str, project_id: str) -> str:
    """A new task in `project_id`."""
    return str(api.create_task(token, project_id=project_id)["id"])


def issue(api: Api, token: str, scopes: list[str], **extra: Any) -> httpx.Response:
    body = {"name": "key", "scopes": scopes, **extra}
    return api.client.post("/v1/api-keys", json=body, headers=bearer(token))


def make_inbox(api: Api, user_id: str) -> str:
    inbox = asyncio.run(api.container.create_inbox().execute(user_id))
    return inbox.id


@dataclass
class Shared:
    api: Api
    owner: Account
    editor: Account
    viewer: Account
    stranger: Account
    project: dict[str, Any]
    other_project: dict[str, Any]
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def project_id(self) -> str:
        return str(self.project["id"])

    def key(self, scopes: list[str], project_ids: list[str] | None = None) -> str:
        extra = {} if project_ids is None else {"project_ids": project_ids}
        response = issue(self.api, self.owner.token, scopes, **extra)
        assert response.status_code == 201, response.text
        return str(response.json()["key"])

    def caller(self, who: str, missing: str | None = None) -> str:
        """The bearer token of a caller: a role's session, `stranger`, `restricted` (an owner's
        key for another project only) or `scopeless` (an owner's key without `missing`)."""
        if who == "restricted":
            return self.key(ALL_SCOPES, [str(self.other_project["id"])])
        if who == "scopeless":
            assert missing is not None
            return self.key([s for s in ALL_SCOPES if s != missing])
        account: Account = getattr(self, who)
        return account.token


def shared(api: Api) -> Shared:
    owner, editor, viewer, stranger = (api.account(fresh_email(n)) for n in ("o", "e", "v", "s"))
    project = create_project(api, owner.token)
    other = create_project(api, owner.token, "Other")
    for account, role in ((editor, "editor"), (viewer, "viewer")):
        response = add_member(api, owner.token, project["id"], account.email, role)
        assert response.status_code == 201, response.text
    return Shared(api, owner, editor, viewer, stranger, project, other)
