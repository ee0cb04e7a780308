"""Projects, members, comments and keys restricted to projects through the whole app on the
real databases (SQLite and PostgreSQL): what the unit tests check on the memory twin holds on SQL,
and a restricted key keeps its projects in the database and in the principal cache."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from app.cli import migrate
from app.factory import create_app
from app.settings import load_settings
from tests.integration.scale.processes import fresh_database
from tests.unit.http.conftest import BASE_ENV, PASSWORD, fast_container, fresh_email

pytestmark = [pytest.mark.integration]

ALL = ["tasks:read", "tasks:write", "keys:manage", "projects:read", "projects:write"]


class Client:
    def __init__(self, client: TestClient[Litestar]) -> None:
        self.http = client

    def account(self) -> tuple[str, str, str]:
        """(user id, e-mail, session token) of a new user."""
        email = fresh_email("sql")
        made = self.http.post("/v1/users", json={"email": email, "password": PASSWORD})
        assert made.status_code == 201, made.text
        login = self.http.post("/v1/auth/sessions", json={"email": email, "password": PASSWORD})
        return made.json()["id"], email, login.json()["token"]


@pytest.fixture(scope="module", params=["sqlite", "postgresql", "postgresql+redis"])
def client(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Client]:
    """The app on SQLite, on PostgreSQL, and on PostgreSQL with Redis (the principal cache and
    the admission gate in Redis)."""
    with _database(request, tmp_path_factory.mktemp("projects-http")) as url:
        env = {**BASE_ENV, "DATABASE_URL": url}
        if request.param.endswith("+redis"):
            target = request.getfixturevalue("redis_target")
            env["REDIS_URL"] = target.url
            env["REDIS_KEY_PREFIX"] = f"{target.key_prefix}projects-{uuid.uuid4().hex[:8]}:"
        migrate(load_settings(environ=env, dotenv_path=None))
        container = fast_container(env)
        with TestClient(create_app(container.settings(), container)) as http:
            yield Client(http)


def _database(request: pytest.FixtureRequest, workdir: Path) -> Any:
    if request.param == "sqlite":
        from contextlib import nullcontext

        return nullcontext(f"sqlite+aiosqlite:///{workdir}/taskhub.db")
    return fresh_database(request.getfixturevalue("postgres_url"))


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_projects_and_members_on_sql(client: Client) -> None:
    http = client.http
    _owner_id, _owner_email, owner = client.account()
    editor_id, editor_email, editor = client.account()
    made = http.post("/v1/projects", json={"name": "Launch"}, headers=auth(owner))
    assert made.status_code == 201, made.text
    project = made.json()
    path = f"/v1/projects/{project['id']}"
    assert made.headers["etag"] == f'"{project["id"]}.1"'
    added = http.post(
        f"{path}/members", json={"email": editor_email, "role": "editor"}, headers=auth(owner)
    )
    assert added.status_code == 201, added.text
    members = http.get(f"{path}/members", headers=auth(editor)).json()["items"]
    assert [m["role"] for m in members] == ["owner", "editor"]
    assert http.patch(path, json={"name": "x"}, headers=auth(editor)).status_code == 403
    renamed = http.patch(
        path, json={"description": "d"}, headers={**auth(owner), "If-Match": made.headers["etag"]}
    )
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["version"] == 2
    stale = http.patch(
        path, json={"description": None}, headers={**auth(owner), "If-Match": made.headers["etag"]}
    )
    assert stale.status_code == 412
    left = http.delete(f"{path}/members/{editor_id}", headers=auth(editor))
    assert left.status_code == 204
    assert http.get(path, headers=auth(editor)).status_code == 404
    assert http.delete(path, headers=auth(owner)).status_code == 204
    assert http.get(path, headers=auth(owner)).status_code == 404


def test_the_inbox_cannot_be_deleted_on_sql(client: Client) -> None:
    _user_id, _email, token = client.account()
    projects = client.http.get("/v1/projects", headers=auth(token)).json()["items"]
    inboxes = [p for p in projects if p["inbox"]]
    assert len(inboxes) == 1
    answer = client.http.delete(f"/v1/projects/{inboxes[0]['id']}", headers=auth(token))
    assert answer.status_code == 409


def test_a_restricted_key_is_stored_and_stays_restricted_on_sql(client: Client) -> None:
    http = client.http
    _user_id, _email, owner = client.account()
    one = http.post("/v1/projects", json={"name": "One"}, headers=auth(owner)).json()["id"]
    two = http.post("/v1/projects", json={"name": "Two"}, headers=auth(owner)).json()["id"]
    issued = http.post(
        "/v1/api-keys",
        json={"name": "narrow", "scopes": ALL, "project_ids": [one]},
        headers=auth(owner),
    )
    assert issued.status_code == 201, issued.text
    assert issued.json()["project_ids"] == [one]
    key = issued.json()["key"]
    listed = http.get("/v1/api-keys", headers=auth(owner)).json()["items"]
    assert [k["project_ids"] for k in listed if k["id"] == issued.json()["id"]] == [[one]]
    for _ in range(2):  # the second request is served from the principal cache
        assert [p["id"] for p in http.get("/v1/projects", headers=auth(key)).json()["items"]] == [
            one
        ]
        assert http.get(f"/v1/projects/{two}", headers=auth(key)).status_code == 404
    assert http.post("/v1/projects", json={"name": "x"}, headers=auth(key)).status_code == 403
    wider = http.post(
        "/v1/api-keys",
        json={"name": "wider", "scopes": ["projects:read"], "project_ids": [one, two]},
        headers=auth(key),
    )
    assert wider.status_code == 403
    foreign = http.post(
        "/v1/api-keys",
        json={"name": "f", "scopes": ["projects:read"], "project_ids": [one, "nope"]},
        headers=auth(owner),
    )
    assert foreign.status_code == 422
    assert [e["field"] for e in foreign.json()["errors"]] == ["project_ids[1]"]


def test_comments_on_sql(client: Client) -> None:
    http = client.http
    _owner_id, _owner_email, owner = client.account()
    _viewer_id, viewer_email, viewer = client.account()
    project = http.post("/v1/projects", json={"name": "C"}, headers=auth(owner)).json()["id"]
    http.post(
        f"/v1/projects/{project}/members",
        json={"email": viewer_email, "role": "viewer"},
        headers=auth(owner),
    )
    task = http.post("/v1/tasks", json={"title": "t", "project_id": project}, headers=auth(owner))
    assert task.status_code == 201, task.text
    path = f"/v1/tasks/{task.json()['id']}/comments"
    made = [
        http.post(path, json={"body": f"c{i}"}, headers=auth(owner)).json()["id"] for i in range(3)
    ]
    assert http.post(path, json={"body": "no"}, headers=auth(viewer)).status_code == 403
    first = http.get(path, params={"limit": 2}, headers=auth(viewer))
    assert [c["id"] for c in first.json()["items"]] == made[:2]
    rest = http.get(
        path, params={"limit": 2, "cursor": first.json()["next_cursor"]}, headers=auth(viewer)
    )
    assert [c["id"] for c in rest.json()["items"]] == made[2:]
    assert rest.json()["next_cursor"] is None
    assert http.delete(f"{path}/{made[0]}", headers=auth(viewer)).status_code == 403
    assert http.delete(f"{path}/{made[0]}", headers=auth(owner)).status_code == 204
    assert [c["id"] for c in http.get(path, headers=auth(owner)).json()["items"]] == made[1:]
