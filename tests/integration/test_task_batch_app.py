"""POST /v1/tasks/batch through the real app on SQLite and on PostgreSQL (raw mode there): an
atomic batch that fails leaves no task, no version and no cap count behind (also when its first
operation is a create, which on PostgreSQL is a statement that could commit by itself); a batch
that is not atomic keeps what succeeded; If-Match per operation; the cap stays exact mid-batch;
an idempotent repeat replays the answer."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from alembic import command
from litestar.testing import TestClient
from sqlalchemy import text

from adapters.sql.engine import create_engine
from app.factory import create_app
from tests.integration.pgbouncer import alembic_config
from tests.integration.scale.processes import fresh_database
from tests.unit.http.conftest import BASE_ENV, Account, Api, fast_container

pytestmark = [pytest.mark.integration]

URL = "/v1/tasks/batch"


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
def make_api(database_url: str) -> Iterator[Callable[..., Api]]:
    with ExitStack() as stack:

        def make(**env: str) -> Api:
            container = fast_container({**BASE_ENV, "DATABASE_URL": database_url, **env})
            app = create_app(container.settings(), container)
            client = stack.enter_context(TestClient(app, raise_server_exceptions=False))
            return Api(app=app, container=container, client=client)

        yield make


def stored(url: str) -> tuple[dict[str, tuple[str, int]], dict[str, int]]:
    """Every live task as id -> (title, version) (a deleted task waits in the trash, outside this
    map), and every owner's cap count, read with SQL."""

    async def read() -> tuple[dict[str, tuple[str, int]], dict[str, int]]:
        engine = create_engine(url)
        try:
            async with engine.connect() as conn:
                tasks = await conn.execute(
                    text("SELECT id, title, version FROM tasks WHERE deleted_at IS NULL")
                )
                counts = await conn.execute(text("SELECT owner_id, n FROM task_counts"))
                return (
                    {str(i): (t, v) for i, t, v in tasks},
                    {str(o): n for o, n in counts},
                )
        finally:
            await engine.dispose()

    return asyncio.run(read())


def batch(api: Api, who: Account, operations: list[Any], **extra: Any) -> httpx.Response:
    headers = {**who.auth, **extra.pop("headers", {})}
    return api.client.post(URL, json={"operations": operations, **extra}, headers=headers)


def create(**data: Any) -> dict[str, Any]:
    return {"op": "create", "data": {"title": "a task", **data}}


def etag(task: dict[str, Any]) -> str:
    return f'"{task["id"]}.{task["version"]}"'


def test_a_failed_atomic_batch_leaves_nothing(
    make_api: Callable[..., Api], database_url: str
) -> None:
    api = make_api()
    alice = api.account()
    kept = api.create_task(alice.token, title="kept")
    doomed = api.create_task(alice.token, title="doomed")
    before = stored(database_url)
    operations = [
        create(title="first"),  # the create fast path, as the batch's first statement
        create(title="child", parent_id=kept["id"]),  # the create with a parent: a held insert
        {"op": "update", "id": kept["id"], "data": {"title": "changed"}, "if_match": etag(kept)},
        {"op": "delete", "id": doomed["id"]},
        {"op": "update", "id": kept["id"], "data": {"priority": 2}, "if_match": etag(kept)},
    ]
    failed = batch(api, alice, operations)
    assert failed.status_code == 412, failed.text
    assert failed.json()["operation"] == 4
    assert stored(database_url) == before
    assert before[1] == {alice.id: 2}

    # The same batch without the stale last operation commits all of it.
    done = batch(api, alice, operations[:4])
    assert [r["status"] for r in done.json()["results"]] == [201, 201, 200, 204]
    tasks, counts = stored(database_url)
    assert sorted(title for title, _ in tasks.values()) == ["changed", "child", "first"]
    assert tasks[kept["id"]] == ("changed", 2)
    assert counts == {alice.id: 4}  # the deleted task waits in the trash and still counts


def test_a_batch_failing_at_its_first_create_changes_nothing(
    make_api: Callable[..., Api], database_url: str
) -> None:
    api = make_api()
    alice = api.account()
    response = batch(api, alice, [create(title="one"), create(project_id=str(uuid.uuid4()))])
    assert response.status_code == 404, response.text
    assert response.json()["operation"] == 1
    tasks, counts = stored(database_url)
    assert tasks == {}
    assert counts.get(alice.id, 0) == 0


def test_not_atomic_keeps_what_succeeded(make_api: Callable[..., Api], database_url: str) -> None:
    api = make_api()
    alice, bob = api.account(), api.account()
    mine = api.create_task(alice.token, title="mine")
    bobs = api.create_task(bob.token, title="bobs")
    response = batch(
        api,
        alice,
        [
            create(title="new"),
            {"op": "update", "id": bobs["id"], "data": {"title": "x"}},
            {"op": "update", "id": mine["id"], "data": {"title": "y"}, "if_match": '"stale"'},
            {"op": "update", "id": mine["id"], "data": {"title": "z"}, "if_match": etag(mine)},
            create(title=""),
        ],
        atomic=False,
    )
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["status"] for r in results] == [201, 404, 412, 200, 422]
    assert results[4]["problem"]["errors"][0]["field"] == "operations[4].data.title"
    tasks, counts = stored(database_url)
    assert sorted(title for title, _ in tasks.values()) == ["bobs", "new", "z"]
    assert counts == {alice.id: 2, bob.id: 1}


def test_the_cap_stays_exact_mid_batch(make_api: Callable[..., Api], database_url: str) -> None:
    api = make_api(MAX_TASKS_PER_USER="3")
    alice = api.account()
    parent = api.create_task(alice.token, title="parent")
    full = batch(
        api,
        alice,
        [create(title="a"), create(title="b", parent_id=parent["id"]), create(title="c")],
    )
    assert full.status_code == 409, full.text
    assert (full.json()["operation"], full.json()["type"].rsplit("/", 1)[1]) == (
        2,
        "limit-reached",
    )
    assert stored(database_url)[1] == {alice.id: 1}
    # A refused create with a parent fails its own operation, not a later one.
    at_parent = batch(
        api,
        alice,
        [create(title="a"), create(title="b"), create(title="c", parent_id=parent["id"])],
    )
    assert at_parent.status_code == 409
    assert at_parent.json()["operation"] == 2
    partial = batch(
        api,
        alice,
        [create(title="a"), create(title="b", parent_id=parent["id"]), create(title="c")],
        atomic=False,
    )
    assert [r["status"] for r in partial.json()["results"]] == [201, 201, 409]
    tasks, counts = stored(database_url)
    assert sorted(title for title, _ in tasks.values()) == ["a", "b", "parent"]
    assert counts == {alice.id: 3}


def test_an_idempotent_repeat_replays_without_running_again(
    make_api: Callable[..., Api], database_url: str
) -> None:
    api = make_api()
    alice = api.account()
    key = {"Idempotency-Key": "batch-once"}
    first = batch(api, alice, [create(title="a"), create(title="b")], headers=key)
    assert first.status_code == 200, first.text
    again = batch(api, alice, [create(title="a"), create(title="b")], headers=key)
    assert again.status_code == 200
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert len(stored(database_url)[0]) == 2
