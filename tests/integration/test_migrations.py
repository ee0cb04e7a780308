"""The whole migration chain runs up, down and up again on PostgreSQL and on SQLite."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.exc import IntegrityError

from adapters.sql.tables import metadata

ROOT = Path(__file__).resolve().parents[2]


def _config(url: str) -> Config:
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


@pytest.fixture(params=["postgresql", "sqlite"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path}/chain.db"
    url: str = request.getfixturevalue("postgres_url")
    return url


async def _table_names(url: str) -> set[str]:
    from adapters.sql.engine import create_engine as create_async

    engine = create_async(url, pool_size=1, max_overflow=0)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
    finally:
        await engine.dispose()


async def _task_index_names(url: str) -> set[str]:
    return await _index_names(url, "tasks")


# The tasks table's indexes each database carries (PostgreSQL adds its GIN indexes): the sort
# indexes were per owner until tasks moved into projects (0006).
OWNER_TASK_INDEXES = {
    "ix_tasks_owner_id_created_at_id",
    "ix_tasks_owner_id_updated_at_id",
    "ix_tasks_owner_id_due_at_id",
    "ix_tasks_owner_id_priority_id",
}
# The trash's (0009).
TRASH_INDEXES = {
    "ix_tasks_project_id_deleted_at_id",
    "ix_tasks_deleted_at",
    "ix_tasks_trashed_with",
}
TASK_INDEXES = {
    "ix_tasks_project_id_created_at_id",
    "ix_tasks_project_id_updated_at_id",
    "ix_tasks_project_id_due_at_id",
    "ix_tasks_project_id_priority_id",
    "ix_tasks_owner_id",
    "ix_tasks_parent_id",
    "ix_tasks_assignee_id",
    *TRASH_INDEXES,
}
POSTGRESQL_TASK_INDEXES = {
    "ix_tasks_labels",
    "ix_tasks_title_folded_trgm",
    "ix_tasks_description_folded_trgm",
}


def test_head_is_a_single_revision() -> None:
    heads = ScriptDirectory.from_config(_config("sqlite://")).get_heads()
    assert len(heads) == 1


async def test_chain_upgrades_downgrades_and_upgrades_again(database_url: str) -> None:
    config = _config(database_url)
    expected = set(metadata.tables) | {"alembic_version"}
    # alembic's env.py runs its own event loop (asyncio.run): keep it off this test's loop.
    await asyncio.to_thread(command.upgrade, config, "head")
    assert await _table_names(database_url) == expected
    await asyncio.to_thread(command.downgrade, config, "base")
    assert await _table_names(database_url) == {"alembic_version"}
    await asyncio.to_thread(command.upgrade, config, "head")
    assert await _table_names(database_url) == expected
    await asyncio.to_thread(command.downgrade, config, "base")


async def test_the_search_indexes_come_and_go_with_their_revision(database_url: str) -> None:
    config = _config(database_url)
    postgresql = database_url.startswith("postgresql")
    at_head = TASK_INDEXES | (POSTGRESQL_TASK_INDEXES if postgresql else set())
    before = OWNER_TASK_INDEXES | ({"ix_tasks_labels"} if postgresql else set())
    assert {ix.name for ix in metadata.tables["tasks"].indexes} == TASK_INDEXES | (
        POSTGRESQL_TASK_INDEXES
    )
    await asyncio.to_thread(command.upgrade, config, "head")
    assert await _task_index_names(database_url) == at_head
    await asyncio.to_thread(command.downgrade, config, "0003")
    assert await _task_index_names(database_url) == before
    await asyncio.to_thread(command.upgrade, config, "head")
    assert await _task_index_names(database_url) == at_head


async def _columns(url: str, table: str) -> set[str]:
    from adapters.sql.engine import create_engine as create_async

    engine = create_async(url, pool_size=1, max_overflow=0)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(
                lambda c: {column["name"] for column in inspect(c).get_columns(table)}
            )
    finally:
        await engine.dispose()


async def _execute(url: str, sql: str, params: dict[str, object] | None = None) -> list[tuple]:  # type: ignore[type-arg]
    from sqlalchemy import text

    from adapters.sql.engine import create_engine as create_async

    engine = create_async(url, pool_size=1, max_overflow=0)
    try:
        async with engine.begin() as conn:
            result = await conn.execute(text(sql), params or {})
            return [tuple(row) for row in result] if result.returns_rows else []
    finally:
        await engine.dispose()


async def test_key_lineage_revision_adds_and_removes_created_by_key_id(database_url: str) -> None:
    config = _config(database_url)
    await asyncio.to_thread(command.downgrade, config, "base")
    await asyncio.to_thread(command.upgrade, config, "0004")
    assert "created_by_key_id" not in await _columns(database_url, "api_keys")
    # A key made before the revision keeps working through it, with no issuer recorded.
    user, key = "0190f5a0-0000-7000-8000-000000000001", "0190f5a0-0000-7000-8000-000000000002"
    now = "2026-12-01T00:00:00.000000+00:00"
    await _execute(
        database_url,
        "INSERT INTO users (id, email, email_key, password_hash, created_at) "
        f"VALUES ('{user}', 'a@example.com', 'a@example.com', 'h', '{now}')",
    )
    await _execute(
        database_url,
        "INSERT INTO api_keys (id, user_id, name, prefix, key_hash, scopes, created_at) "
        f"VALUES ('{key}', '{user}', 'old', 'thk_abcdefgh', 'hash', 'tasks:read', '{now}')",
    )

    await asyncio.to_thread(command.upgrade, config, "0005")
    assert "created_by_key_id" in await _columns(database_url, "api_keys")
    rows = await _execute(database_url, "SELECT CAST(id AS TEXT), created_by_key_id FROM api_keys")
    assert rows == [(key, None)]
    await asyncio.to_thread(command.downgrade, config, "0004")
    assert "created_by_key_id" not in await _columns(database_url, "api_keys")
    assert len(await _execute(database_url, "SELECT id FROM api_keys")) == 1
    await asyncio.to_thread(command.upgrade, config, "head")
    assert "created_by_key_id" in await _columns(database_url, "api_keys")
    await asyncio.to_thread(command.downgrade, config, "base")


async def test_task_counts_revision_backfills_the_counts_and_goes(database_url: str) -> None:
    config = _config(database_url)
    await asyncio.to_thread(command.downgrade, config, "base")
    await asyncio.to_thread(command.upgrade, config, "0005")
    now = "2026-12-01T00:00:00.000000+00:00"
    # Three users: two tasks, none, three.
    users = [f"0190f5a0-0000-7000-8000-00000000010{n}" for n in range(3)]
    for n, user in enumerate(users):
        await _execute(
            database_url,
            "INSERT INTO users (id, email, email_key, password_hash, created_at) "
            f"VALUES ('{user}', 'u{n}@example.com', 'u{n}@example.com', 'h', '{now}')",
        )
    labels = "'{}'" if database_url.startswith("postgresql") else "'[]'"
    for owner, count in ((users[0], 2), (users[2], 3)):
        for _ in range(count):
            row = f"'{uuid.uuid4()}', '{owner}', 't', 'todo', 1, {labels}, '{now}', '{now}', 1, 't'"
            await _execute(
                database_url,
                "INSERT INTO tasks (id, owner_id, title, status, priority, labels, created_at, "
                f"updated_at, version, title_folded) VALUES ({row})",
            )
    counted = "SELECT CAST(owner_id AS TEXT), n FROM task_counts ORDER BY 1"

    await asyncio.to_thread(command.upgrade, config, "0006")
    assert await _execute(database_url, counted) == [(users[0], 2), (users[2], 3)]
    await asyncio.to_thread(command.downgrade, config, "0005")
    assert "task_counts" not in await _table_names(database_url)
    assert len(await _execute(database_url, "SELECT id FROM tasks")) == 5
    await asyncio.to_thread(command.upgrade, config, "head")
    assert await _execute(database_url, counted) == [(users[0], 2), (users[2], 3)]
    # A user's count goes with the user (the engine turns SQLite's foreign keys on).
    await _execute(database_url, f"DELETE FROM users WHERE id = '{users[2]}'")
    assert await _execute(database_url, counted) == [(users[0], 2)]
    await asyncio.to_thread(command.downgrade, config, "base")


async def _index_names(url: str, table: str) -> set[str]:
    from adapters.sql.engine import create_engine as create_async

    engine = create_async(url, pool_size=1, max_overflow=0)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(
                lambda c: {str(ix["name"]) for ix in inspect(c).get_indexes(table)}
            )
    finally:
        await engine.dispose()


async def test_worker_revision_adds_and_removes_the_schedule_and_the_purge_indexes(
    database_url: str,
) -> None:
    config = _config(database_url)
    purge_indexes = {"ix_sessions_expires_at", "ix_sessions_revoked_at"}
    await asyncio.to_thread(command.downgrade, config, "base")
    await asyncio.to_thread(command.upgrade, config, "0006")
    assert "worker_jobs" not in await _table_names(database_url)
    assert not purge_indexes & await _index_names(database_url, "sessions")

    await asyncio.to_thread(command.upgrade, config, "0007")
    assert "worker_jobs" in await _table_names(database_url)
    assert await _columns(database_url, "worker_jobs") == set(
        metadata.tables["worker_jobs"].c.keys()
    )
    assert purge_indexes <= await _index_names(database_url, "sessions")
    await asyncio.to_thread(command.downgrade, config, "0006")
    assert "worker_jobs" not in await _table_names(database_url)
    assert not purge_indexes & await _index_names(database_url, "sessions")
    await asyncio.to_thread(command.upgrade, config, "head")
    await asyncio.to_thread(command.downgrade, config, "base")


async def test_events_revision_adds_and_removes_the_event_log(database_url: str) -> None:
    config = _config(database_url)
    await asyncio.to_thread(command.downgrade, config, "base")
    await asyncio.to_thread(command.upgrade, config, "0008")
    assert not {"events", "event_horizon"} & await _table_names(database_url)
    await asyncio.to_thread(command.upgrade, config, "0010")
    for table in ("events", "event_horizon"):
        assert await _columns(database_url, table) == set(metadata.tables[table].c.keys())
    assert {"ix_events_txid_seq", "ix_events_project_id_seq"} <= await _index_names(
        database_url, "events"
    )
    await asyncio.to_thread(command.downgrade, config, "0008")
    assert not {"events", "event_horizon"} & await _table_names(database_url)
    await asyncio.to_thread(command.upgrade, config, "head")
    await asyncio.to_thread(command.downgrade, config, "base")


USERS = ("0190f5a0-0000-7000-8000-0000000000a1", "0190f5a0-0000-7000-8000-0000000000a2")
TASKS = {  # task id -> its owner
    "0190f5a0-0000-7000-8000-0000000000b1": USERS[0],
    "0190f5a0-0000-7000-8000-0000000000b2": USERS[0],
    "0190f5a0-0000-7000-8000-0000000000b3": USERS[1],
}


async def _seed_users_with_tasks(url: str) -> None:
    now = "2026-12-01T00:00:00.000000+00:00"
    for n, user in enumerate(USERS):
        await _execute(
            url,
            "INSERT INTO users (id, email, email_key, password_hash, created_at) "
            f"VALUES ('{user}', 'u{n}@example.com', 'u{n}@example.com', 'h', '{now}')",
        )
    for task, owner in TASKS.items():
        await _execute(
            url,
            "INSERT INTO tasks (id, owner_id, title, status, priority, labels, created_at, "
            "updated_at, version, title_folded) VALUES "
            f"('{task}', '{owner}', 't', 'todo', 1, '{{}}', '{now}', '{now}', 1, 't')"
            if url.startswith("postgresql")
            else "INSERT INTO tasks (id, owner_id, title, status, priority, labels, created_at, "
            "updated_at, version, title_folded) VALUES "
            f"('{task}', '{owner}', 't', 'todo', 1, '[]', '{now}', '{now}', 1, 't')",
        )


async def _inboxes(url: str) -> dict[str, tuple[str, str, str]]:
    """Each user's inbox: user id -> (project id, its name, the user's role)."""
    rows = await _execute(
        url,
        "SELECT CAST(m.user_id AS TEXT), CAST(p.id AS TEXT), p.name, m.role "
        "FROM projects p JOIN project_members m ON m.project_id = p.id "
        "WHERE p.inbox AND p.inbox_owner_id = m.user_id",
    )
    return {user: (project, name, role) for user, project, name, role in rows}


async def test_projects_revision_gives_every_user_an_inbox_holding_their_tasks(
    database_url: str,
) -> None:
    config = _config(database_url)
    await asyncio.to_thread(command.downgrade, config, "base")
    await asyncio.to_thread(command.upgrade, config, "0007")
    await _seed_users_with_tasks(database_url)

    for _ in range(2):  # up, down, and up again: the data survives each way
        await asyncio.to_thread(command.upgrade, config, "0008")
        inboxes = await _inboxes(database_url)
        assert set(inboxes) == set(USERS)
        assert {(name, role) for _, name, role in inboxes.values()} == {("Inbox", "owner")}
        placed = await _execute(
            database_url,
            "SELECT CAST(id AS TEXT), CAST(project_id AS TEXT), parent_id, assignee_id FROM tasks",
        )
        assert {task: project for task, project, _, _ in placed} == {
            task: inboxes[owner][0] for task, owner in TASKS.items()
        }
        assert {(parent, assignee) for _, _, parent, assignee in placed} == {(None, None)}
        assert {"project_ids"} <= await _columns(database_url, "api_keys")
        await asyncio.to_thread(command.downgrade, config, "0007")
        assert "project_id" not in await _columns(database_url, "tasks")
        assert "project_ids" not in await _columns(database_url, "api_keys")
        assert {"projects", "project_members", "comments"}.isdisjoint(
            await _table_names(database_url)
        )
        owners = await _execute(
            database_url, "SELECT CAST(id AS TEXT), CAST(owner_id AS TEXT) FROM tasks"
        )
        assert dict(owners) == TASKS
    await asyncio.to_thread(command.upgrade, config, "head")
    await asyncio.to_thread(command.downgrade, config, "base")


async def test_a_user_has_at_most_one_inbox(database_url: str) -> None:
    config = _config(database_url)
    await asyncio.to_thread(command.downgrade, config, "base")
    await asyncio.to_thread(command.upgrade, config, "0007")
    await _seed_users_with_tasks(database_url)
    await asyncio.to_thread(command.upgrade, config, "head")
    now = "2026-12-02T00:00:00.000000+00:00"
    insert = (
        "INSERT INTO projects (id, name, inbox, inbox_owner_id, created_at, updated_at, version) "
        "VALUES ('{id}', 'Inbox', {inbox}, {owner}, '{now}', '{now}', 1)"
    )
    true, false = ("true", "false") if database_url.startswith("postgresql") else ("1", "0")
    second_inbox = insert.format(
        id="0190f5a0-0000-7000-8000-0000000000c1", inbox=true, owner=f"'{USERS[0]}'", now=now
    )
    with pytest.raises(IntegrityError):
        await _execute(database_url, second_inbox)
    inbox_without_user = insert.format(
        id="0190f5a0-0000-7000-8000-0000000000c2", inbox=true, owner="NULL", now=now
    )
    with pytest.raises(IntegrityError):
        await _execute(database_url, inbox_without_user)
    shared = insert.format(
        id="0190f5a0-0000-7000-8000-0000000000c3", inbox=false, owner="NULL", now=now
    )
    await _execute(database_url, shared)
    await asyncio.to_thread(command.downgrade, config, "base")


WEBHOOK_TABLES = {"webhooks", "webhook_deliveries", "webhook_attempts", "webhook_fan_out"}


async def test_webhooks_revision_adds_the_tables_and_seeds_the_fan_out_row(
    database_url: str,
) -> None:
    config = _config(database_url)
    await asyncio.to_thread(command.downgrade, config, "base")
    await asyncio.to_thread(command.upgrade, config, "0008")
    assert not WEBHOOK_TABLES & await _table_names(database_url)
    await asyncio.to_thread(command.upgrade, config, "0011")
    assert await _table_names(database_url) >= WEBHOOK_TABLES
    for table in WEBHOOK_TABLES:
        assert await _columns(database_url, table) == set(metadata.tables[table].c.keys())
    rows = await _execute(database_url, "SELECT name, position FROM webhook_fan_out")
    assert rows == [("fan_out", None)]
    await asyncio.to_thread(command.downgrade, config, "0008")
    assert not WEBHOOK_TABLES & await _table_names(database_url)
    await asyncio.to_thread(command.downgrade, config, "base")


async def test_trash_revision_adds_the_columns_and_makes_the_list_indexes_partial(
    database_url: str,
) -> None:
    config = _config(database_url)
    await asyncio.to_thread(command.upgrade, config, "0009")
    assert {"deleted_at", "trashed_with"} <= await _columns(database_url, "tasks")
    assert await _task_index_names(database_url) >= TRASH_INDEXES
    await asyncio.to_thread(command.downgrade, config, "0008")
    columns = await _columns(database_url, "tasks")
    assert not {"deleted_at", "trashed_with"} & columns
    names = await _task_index_names(database_url)
    assert "ix_tasks_project_id_created_at_id" in names
    assert not TRASH_INDEXES & names
    await asyncio.to_thread(command.upgrade, config, "head")


async def test_delivery_payload_revision_keeps_payloads_by_reference_and_back(
    database_url: str,
) -> None:
    """At 0012 a delivery may keep its payload by reference to its event; the downgrade copies
    every such payload back in, as the application builds it from the event."""
    from adapters.sql.events import delivery_payload

    config = _config(database_url)
    await asyncio.to_thread(command.downgrade, config, "base")
    await asyncio.to_thread(command.upgrade, config, "head")
    postgresql = database_url.startswith("postgresql")
    now = "2026-12-03T00:00:00.000000+00:00"
    user, hook, event, by_reference, ping = (
        f"0190f5a0-0000-7000-8000-0000000000{n}" for n in ("e1", "e2", "e3", "e4", "e5")
    )
    body = (
        f'{{"id":"{event}","type":"task.created","occurred_at":"2026-12-03T00:00:00+00:00",'
        '"project_id":null,"data":{"title":"ünïcode"}}'
    )
    statements = [
        "INSERT INTO users (id, email, email_key, password_hash, created_at) "
        f"VALUES ('{user}', 'w@example.com', 'w@example.com', 'h', '{now}')",
        "INSERT INTO webhooks (id, owner_id, url, events, enabled, secret, created_at, "
        f"updated_at, version) VALUES ('{hook}', '{user}', 'https://example.com', "
        f"{"'{task.*}'" if postgresql else '\'["task.*"]\''}, {'true' if postgresql else '1'}, "
        f"'s', '{now}', '{now}', 1)",
        "INSERT INTO events (txid, id, type, occurred_at, resource_type, resource_id, body) "
        f"VALUES (0, '{event}', 'task.created', '{now}', 'task', '{event}', :body)",
    ]
    for statement in statements:
        await _execute(database_url, statement, {"body": body})
    delivery = (
        "INSERT INTO webhook_deliveries (id, webhook_id, event_id, event_type, payload, status, "
        "attempts, next_attempt_at, created_at, updated_at) VALUES "
        f"(:id, '{hook}', :event_id, 'task.created', :payload, 'pending', 0, '{now}', '{now}', "
        f"'{now}')"
    )
    await _execute(database_url, delivery, {"id": by_reference, "event_id": event, "payload": None})
    await _execute(database_url, delivery, {"id": ping, "event_id": hook, "payload": "ping body"})
    assert await _index_names(database_url, "webhook_deliveries") == {
        "ix_webhook_deliveries_webhook_id_created_at_id",
        "ix_webhook_deliveries_pending_next_attempt_at_id",
        "ix_webhook_deliveries_finished_updated_at",
        "ix_webhook_deliveries_by_reference_event_id",
    }

    await asyncio.to_thread(command.downgrade, config, "0011")
    rows = await _execute(
        database_url, "SELECT CAST(id AS TEXT), payload FROM webhook_deliveries ORDER BY id"
    )
    assert rows == [(by_reference, delivery_payload(body)), (ping, "ping body")]
    assert await _index_names(database_url, "webhook_deliveries") == {
        "ix_webhook_deliveries_webhook_id_created_at_id",
        "ix_webhook_deliveries_status_next_attempt_at",
        "ix_webhook_deliveries_updated_at",
    }
    await asyncio.to_thread(command.upgrade, config, "head")
    await asyncio.to_thread(command.downgrade, config, "base")
