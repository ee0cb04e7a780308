"""Tasks in projects through the real app on SQLite and on PostgreSQL: sign-up's inbox, roles in
a shared project (403 for a viewer, 404 for a non-member), the tree rules as 422s, moving a
subtree and the list filters, all over HTTP and the SQL adapters (raw mode on PostgreSQL)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from alembic import command
from litestar.testing import TestClient

from adapters.sql.engine import create_engine
from adapters.sql.uow import SqlProjectUnitOfWork
from app.factory import create_app
from domain.projects import Membership, Project, Role
from tests.integration.pgbouncer import alembic_config
from tests.integration.scale.processes import fresh_database
from tests.unit.http.conftest import BASE_ENV, Account, Api, fast_container
from tests.unit.http.test_task_projects_api import fields_of, patch, post
from tests.unit.tasks.fakes import T0

pytestmark = [pytest.mark.integration]


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path}/app.db"
        command.upgrade(alembic_config(url), "head")
        yield url
        return
    with fresh_database(request.getfixturevalue("postgres_url")) as url:
        command.upgrade(alembic_config(url), "head")
        yield url


@pytest.fixture
def api(database_url: str) -> Iterator[Api]:
    with ExitStack() as stack:
        container = fast_container({**BASE_ENV, "DATABASE_URL": database_url})
        app = create_app(container.settings(), container)
        client = stack.enter_context(TestClient(app, raise_server_exceptions=False))
        yield Api(app=app, container=container, client=client)


def _run_in_sql(url: str, members: list[tuple[str, Role]]) -> str:
    """A project with these members, stored straight through the SQL unit of work."""

    async def share() -> str:
        engine = create_engine(url)
        project = Project(str(uuid.uuid4()), "Shared", None, False, T0, T0, 1)
        try:
            async with SqlProjectUnitOfWork(engine) as uow:
                await uow.projects.add(project)
                for user_id, role in members:
                    await uow.memberships.add(Membership(project.id, user_id, role, T0))
                await uow.commit()
        finally:
            await engine.dispose()
        return project.id

    return asyncio.run(share())


def test_tasks_in_shared_projects(api: Api, database_url: str) -> None:
    alice, bob, carol = api.account(), api.account(), api.account()
    project = _run_in_sql(database_url, [(alice.id, Role.OWNER), (bob.id, Role.VIEWER)])
    inboxed = api.create_task(alice.token)
    inbox = inboxed["project_id"]
    assert uuid.UUID(inbox)
    task = api.create_task(alice.token, project_id=project, assignee_id=bob.id)
    path = f"/v1/tasks/{task['id']}"
    assert api.client.get(path, headers=bob.auth).json() == task
    for who, status in ((bob, 403), (carol, 404)):
        assert post(api, who, project_id=project).status_code == status
        assert patch(api, who, task["id"], title="x").status_code == status
        assert api.client.delete(path, headers=who.auth).status_code == status
    assert api.client.get(path, headers=carol.auth).status_code == 404
    assert post(api, carol, project_id=inbox).status_code == 404

    listed = api.client.get("/v1/tasks", headers=bob.auth).json()["items"]
    assert [t["id"] for t in listed] == [task["id"]]
    assert api.client.get("/v1/tasks", headers=carol.auth).json()["items"] == []


def test_tree_rules_moves_and_filters(api: Api, database_url: str) -> None:
    alice, bob = api.account(), api.account()
    project = _run_in_sql(database_url, [(alice.id, Role.OWNER), (bob.id, Role.EDITOR)])
    root = api.create_task(alice.token, assignee_id=alice.id)
    child = api.create_task(alice.token, parent_id=root["id"])
    bad = post(api, alice, parent_id=str(uuid.uuid4()), assignee_id=bob.id)
    assert (bad.status_code, fields_of(bad)) == (422, ["parent_id", "assignee_id"])
    cycle = patch(api, alice, root["id"], parent_id=child["id"])
    assert (cycle.status_code, fields_of(cycle)) == (422, ["parent_id"])

    moved = patch(api, alice, root["id"], project_id=project)
    assert moved.status_code == 200, moved.text
    assert (moved.json()["project_id"], moved.json()["version"]) == (project, 2)
    after = api.client.get(f"/v1/tasks/{child['id']}", headers=bob.auth).json()
    assert (after["project_id"], after["parent_id"], after["version"]) == (
        project,
        root["id"],
        2,
    )

    def ids(who: Account, **query: str) -> set[str]:
        response = api.client.get("/v1/tasks", params=query, headers=who.auth)
        assert response.status_code == 200, response.text
        return {t["id"] for t in response.json()["items"]}

    assert ids(bob) == {root["id"], child["id"]}
    assert ids(bob, assignee_id=alice.id) == {root["id"]}
    assert ids(bob, assignee_id="none") == {child["id"]}
    assert ids(bob, parent_id="none") == {root["id"]}
    assert ids(bob, parent_id=root["id"]) == {child["id"]}
    assert ids(bob, project_id=project) == {root["id"], child["id"]}
    assert ids(bob, project_id=str(uuid.uuid4())) == set()
    assert ids(alice, assignee_id="me") == {root["id"]}

    assert api.client.delete(f"/v1/tasks/{root['id']}", headers=bob.auth).status_code == 204
    assert api.client.get(f"/v1/tasks/{child['id']}", headers=alice.auth).status_code == 404
