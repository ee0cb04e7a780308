"""The per-owner task cap on the SQL store, every database and mode: the contract the in-memory
twin keeps too, an exact `task_counts` row after it, and the cap over HTTP through the real app."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from dependency_injector import providers
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.security.passwords import Argon2idPasswordHasher
from adapters.sql.tables import task_counts, tasks
from app.container import build_container
from app.factory import create_app
from app.settings import load_settings
from domain.projects import Membership, Project, Role
from domain.tasks import DEFAULT_MAX_TASKS_PER_OWNER
from tests.integration.sql.conftest import (
    Database,
    TaskUowFactory,
    UowFactory,
    add_user,
    inbox_id,
    new_id,
)
from tests.unit.tasks.cap_contract import check_the_cap
from tests.unit.tasks.fakes import T0, make_task
from tests.unit.tasks.trash_contract import check_the_trash


async def counts(engine: AsyncEngine, owner_id: str) -> tuple[int | None, int]:
    """(the owner's `task_counts.n`, or None without a row; the tasks the owner holds)."""
    async with engine.connect() as conn:
        n = await conn.scalar(select(task_counts.c.n).where(task_counts.c.owner_id == owner_id))
        held = await conn.scalar(
            select(func.count()).select_from(tasks).where(tasks.c.owner_id == owner_id)
        )
    return n, int(held or 0)


async def test_the_sql_store_keeps_the_cap_contract_and_an_exact_count(
    engine: AsyncEngine, new_uow: UowFactory, tasks_uow: TaskUowFactory
) -> None:
    owner, neighbour = await add_user(new_uow), await add_user(new_uow)
    assert await counts(engine, owner.id) == (None, 0)
    projects = {user.id: inbox_id(user.id) for user in (owner, neighbour)}
    await check_the_cap(tasks_uow, owner.id, neighbour.id, projects)
    assert await counts(engine, owner.id) == (4, 4)
    assert await counts(engine, neighbour.id) == (1, 1)


async def test_a_subtree_delete_and_a_project_delete_free_every_creators_places(
    engine: AsyncEngine, new_uow: UowFactory, tasks_uow: TaskUowFactory
) -> None:
    """Subtasks and a project's tasks go by foreign-key cascades; each creator's count still
    goes down by exactly their tasks that went."""
    alice, bob = await add_user(new_uow), await add_user(new_uow)
    shared = Project(new_id(), "Shared", None, False, T0, T0, 1)
    async with new_uow() as uow:
        await uow.projects.add(shared)
        await uow.memberships.add(Membership(shared.id, alice.id, Role.OWNER, T0))
        await uow.memberships.add(Membership(shared.id, bob.id, Role.EDITOR, T0))
        await uow.commit()
    root = make_task(new_id(), owner_id=alice.id, project_id=shared.id)
    child = make_task(new_id(), owner_id=bob.id, project_id=shared.id, parent_id=root.id)
    grandchild = make_task(new_id(), owner_id=alice.id, project_id=shared.id, parent_id=child.id)
    aside = make_task(new_id(), owner_id=bob.id, project_id=shared.id)
    kept = make_task(new_id(), owner_id=bob.id, project_id=inbox_id(bob.id))
    for task in (root, child, grandchild, aside, kept):
        async with tasks_uow() as uow:
            await uow.tasks.add(task, limit=DEFAULT_MAX_TASKS_PER_OWNER)
            await uow.commit()
    assert await counts(engine, alice.id) == (2, 2)
    assert await counts(engine, bob.id) == (3, 3)

    async with tasks_uow() as uow:
        assert not await uow.tasks.delete(alice.id, root.id, 2)  # stale: nothing moves
        assert await uow.tasks.delete(alice.id, root.id, 1)
        await uow.commit()
    assert await counts(engine, alice.id) == (0, 0)
    assert await counts(engine, bob.id) == (2, 2)

    async with new_uow() as uow:
        assert await uow.projects.delete(shared.id)
        await uow.commit()
    assert await counts(engine, bob.id) == (1, 1)  # the inbox task stays counted


async def test_the_sql_store_keeps_the_trash_contract_and_an_exact_count(
    engine: AsyncEngine, new_uow: UowFactory, tasks_uow: TaskUowFactory
) -> None:
    owner = await add_user(new_uow)
    await check_the_trash(tasks_uow, owner.id, inbox_id(owner.id))
    assert await counts(engine, owner.id) == (2, 2)  # the contract ends holding two


async def test_a_project_delete_frees_the_places_of_its_trashed_tasks(
    engine: AsyncEngine, new_uow: UowFactory, tasks_uow: TaskUowFactory
) -> None:
    alice = await add_user(new_uow)
    doomed = Project(new_id(), "Doomed", None, False, T0, T0, 1)
    async with new_uow() as uow:
        await uow.projects.add(doomed)
        await uow.memberships.add(Membership(doomed.id, alice.id, Role.OWNER, T0))
        await uow.commit()
    root = make_task(new_id(), owner_id=alice.id, project_id=doomed.id)
    child = make_task(new_id(), owner_id=alice.id, project_id=doomed.id, parent_id=root.id)
    for task in (root, child):
        async with tasks_uow() as uow:
            await uow.tasks.add(task, limit=DEFAULT_MAX_TASKS_PER_OWNER)
            await uow.commit()
    async with tasks_uow() as uow:
        assert await uow.tasks.trash(root.id, 1, T0)
        await uow.commit()
    assert await counts(engine, alice.id) == (2, 2)  # trashed tasks keep their places
    async with new_uow() as uow:
        assert await uow.projects.delete(doomed.id)
        await uow.commit()
    assert await counts(engine, alice.id) == (0, 0)


# --- over HTTP, through the real app on this database ---------------------------------------------

PASSWORD = "correct horse battery staple"


@pytest.fixture
async def client(database: Database, engine: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    """The app on this database (on PostgreSQL the test schema), with a cap of 2 tasks a user."""
    url = engine.url.render_as_string(hide_password=False)
    env = {
        "DATABASE_URL": url,
        "DATABASE_PGBOUNCER": str(database.kind == "pgbouncer").lower(),
        "MAX_TASKS_PER_USER": "2",
        "LOG_FORMAT": "json",
        "RATE_LIMIT_DEFAULT": "100000/minute",
        "RATE_LIMIT_LOGIN": "100000/minute",
        "RATE_LIMIT_SIGNUP": "100000/minute",
    }
    container = build_container(load_settings(environ=env, dotenv_path=None))
    # The tests' engine (on PostgreSQL it works in the test schema); and a cheap argon2id.
    container.engine.override(providers.Object(engine))
    container.password_hasher.override(
        providers.Object(Argon2idPasswordHasher(time_cost=1, memory_cost=8 * 1024))
    )
    app = create_app(container.settings(), container)
    # On this test's event loop, where the engine's connections live (the app's lifespan only
    # closes the container, which would dispose the shared engine: it is not run).
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


async def _account(client: httpx.AsyncClient, email: str) -> dict[str, str]:
    body = {"email": email, "password": PASSWORD}
    assert (await client.post("/v1/users", json=body)).status_code == 201
    session = await client.post("/v1/auth/sessions", json=body)
    assert session.status_code == 201, session.text
    return {"Authorization": f"Bearer {session.json()['token']}"}


async def test_over_http_the_cap_is_409_limit_reached_and_a_delete_frees_a_place(
    client: httpx.AsyncClient,
) -> None:
    auth = await _account(client, f"cap-{uuid.uuid4().hex[:10]}@example.com")
    made = []
    for n in range(2):
        response = await client.post("/v1/tasks", json={"title": f"t{n}"}, headers=auth)
        assert response.status_code == 201, response.text
        made.append(response.json()["id"])

    refused = await client.post("/v1/tasks", json={"title": "one too many"}, headers=auth)
    assert refused.status_code == 409, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    problem = refused.json()
    assert problem["type"] == "https://taskhub.dev/problems/limit-reached"
    assert "already holds 2 tasks" in problem["detail"]
    bad = await client.post("/v1/tasks", json={"title": " "}, headers=auth)
    assert bad.status_code == 422  # bad input keeps its own answer at the cap
    listed = await client.get("/v1/tasks", headers=auth)
    assert {task["id"] for task in listed.json()["items"]} == set(made)

    # In the trash a task still takes its place; deleted for good it frees it.
    assert (await client.delete(f"/v1/tasks/{made[0]}", headers=auth)).status_code == 204
    still = await client.post("/v1/tasks", json={"title": "still full"}, headers=auth)
    assert still.status_code == 409, still.text
    assert (await client.delete(f"/v1/trash/{made[0]}", headers=auth)).status_code == 204
    again = await client.post("/v1/tasks", json={"title": "room again"}, headers=auth)
    assert again.status_code == 201, again.text
    full = await client.post("/v1/tasks", json={"title": "full again"}, headers=auth)
    assert full.status_code == 409
