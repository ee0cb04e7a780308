"""SQL adapters on both databases: PostgreSQL (the session's `postgres_url`) and a SQLite file.

Each database is migrated once with Alembic. On PostgreSQL the schema lives in a schema of its
own (search_path), so the migration tests that run the chain down and up in the same database
never pull the tables from under these tests. Tests stay apart by using fresh ids and e-mails.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import event, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from adapters.sql.engine import create_engine
from adapters.sql.uow import SqlUnitOfWork
from domain.ports.tasks import Readable, TaskUnitOfWork
from domain.projects import Membership, Role
from domain.tasks import Task
from domain.use_cases.projects import open_inbox
from domain.users import User

ROOT = Path(__file__).resolve().parents[3]


def _alembic_config(url: str) -> Config:
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def _upgrade_on(connection: Connection, config: Config) -> None:
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


async def _postgres_engine(url: str) -> AsyncIterator[AsyncEngine]:
    schema = f"sql_adapters_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(url)
    async with admin.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = create_async_engine(
        url, pool_size=4, connect_args={"server_settings": {"search_path": schema}}
    )
    try:
        # Alembic shares this connection (env.py's recipe), so the search_path applies to it.
        async with engine.connect() as conn:
            await conn.run_sync(_upgrade_on, _alembic_config(url))
            await conn.commit()
        yield engine
    finally:
        await engine.dispose()
        async with admin.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await admin.dispose()


async def _pgbouncer_engine(url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(url, pool_size=4, pgbouncer=True)
    try:
        yield engine
    finally:
        await engine.dispose()


async def _sqlite_engine(path: Path) -> AsyncIterator[AsyncEngine]:
    url = f"sqlite+aiosqlite:///{path}"
    # env.py runs its own event loop (asyncio.run): keep it off this one.
    await asyncio.to_thread(command.upgrade, _alembic_config(url), "head")
    engine = create_engine(url)
    try:
        yield engine
    finally:
        await engine.dispose()


@dataclass(frozen=True)
class Database:
    kind: str  # postgresql, pgbouncer (PostgreSQL through PgBouncer) or sqlite
    url: str


@pytest.fixture(scope="session", params=["postgresql", "pgbouncer", "sqlite"])
def database(request: pytest.FixtureRequest) -> Database:
    """Which database; PostgreSQL URLs are resolved here, outside the event loop (the fixtures
    behind them run asyncio themselves)."""
    if request.param == "postgresql":
        return Database("postgresql", request.getfixturevalue("postgres_url"))
    if request.param == "pgbouncer":
        _direct, through = request.getfixturevalue("pgbouncer_database")
        return Database("pgbouncer", through)
    return Database("sqlite", "")


@pytest.fixture(scope="session")
async def engine(
    database: Database, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[AsyncEngine]:
    """A migrated database: PostgreSQL, PostgreSQL through PgBouncer (the production engine in
    its PgBouncer mode, on a database of its own), then SQLite."""
    if database.kind == "sqlite":
        engines = _sqlite_engine(tmp_path_factory.mktemp("sql") / "taskhub.db")
    elif database.kind == "pgbouncer":
        engines = _pgbouncer_engine(database.url)
    else:
        engines = _postgres_engine(database.url)
    async for made in engines:
        yield made


type UowFactory = Callable[[], SqlUnitOfWork]


@pytest.fixture(scope="session")
def new_uow(engine: AsyncEngine) -> UowFactory:
    return lambda: SqlUnitOfWork(engine)


type TaskUowFactory = Callable[[], TaskUnitOfWork]

# How the SQL unit of work can hold its connection: through SQLAlchemy on both databases, the
# raw-connection mode (what serves tasks in production) on PostgreSQL.
TASK_UOWS = ("sqlalchemy", "raw")


@pytest.fixture(params=TASK_UOWS)
def tasks_uow(request: pytest.FixtureRequest, engine: AsyncEngine) -> TaskUowFactory:
    """Each way the application runs tasks on this database (the same assertions hold for
    every one of them)."""
    raw = request.param == "raw"
    return lambda: SqlUnitOfWork(engine, raw=raw)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The raw mode exists only on PostgreSQL: drop its SQLite combinations, and SQLite runs
    of modules that say POSTGRESQL_ONLY and of tests a module names in POSTGRESQL_ONLY_TESTS; a
    memory twin's runs (`backend` "memory") go beside SQLite only; tests a module names in
    DIRECT_ONLY (they need a
    direct connection: server process ids, session settings) do not run through PgBouncer.
    Deselected, not skipped."""
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        module = getattr(item, "module", None)
        name = getattr(item, "originalname", item.name)
        raw = "raw" in (params.get("tasks_uow"), params.get("backend"))
        postgresql_only = (
            raw
            or getattr(module, "POSTGRESQL_ONLY", False)
            or name in getattr(module, "POSTGRESQL_ONLY_TESTS", ())
        )
        # A memory twin beside the SQL runs needs no database: once (beside SQLite) is enough.
        twin_again = params.get("backend") == "memory" and params.get("database") != "sqlite"
        direct_only = name in getattr(module, "DIRECT_ONLY", ())
        dropped = (
            (postgresql_only and params.get("database") == "sqlite")
            or (direct_only and params.get("database") == "pgbouncer")
            or twin_again
        )
        (drop if dropped else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


async def _search_path(engine: AsyncEngine) -> str:
    async with engine.connect() as conn:
        return str((await conn.execute(text("SHOW search_path"))).scalar_one())


type EngineMaker = Callable[..., AsyncEngine]


@pytest.fixture
async def make_engine(engine: AsyncEngine, database: Database) -> AsyncIterator[EngineMaker]:
    """Production engines (`create_engine`) on the test schema (through PgBouncer: its own
    database, in PgBouncer mode); disposed after the test."""
    url = engine.url.render_as_string(hide_password=False)
    search_path = await _search_path(engine)
    made: list[AsyncEngine] = []

    def make(**settings: Any) -> AsyncEngine:
        if database.kind == "pgbouncer":
            settings.setdefault("pgbouncer", True)
            made.append(new := create_engine(url, **settings))
            return new
        new = create_engine(url, **settings)

        @event.listens_for(new.sync_engine, "do_connect")
        def _on_schema(_dialect: Any, _record: Any, _args: Any, kwargs: dict[str, Any]) -> None:
            kwargs.setdefault("server_settings", {})["search_path"] = search_path

        made.append(new)
        return new

    yield make
    for each in made:
        await each.dispose()


def new_id() -> str:
    return str(uuid.uuid4())


def make_user(email: str | None = None, *, created_at: datetime | None = None) -> User:
    return User(
        id=new_id(),
        email=email or f"user-{uuid.uuid4().hex[:10]}@example.com",
        name="Test User",
        password_hash="$argon2id$v=19$fake",
        created_at=created_at or datetime(2026, 3, 1, 9, 30, 15, 123456, tzinfo=UTC),
    )


_INBOXES = uuid.UUID("0190f5a0-0000-7000-8000-00000000abcd")


def inbox_id(user_id: str) -> str:
    """The id `add_user` gives the user's inbox (derived from the user's id)."""
    return str(uuid.uuid5(_INBOXES, user_id))


async def add_user(new_uow: UowFactory, user: User | None = None) -> User:
    """Commit a user with their inbox, as sign-up does (tasks, sessions and keys need their
    owner to exist; tasks need a project)."""
    user = user or make_user()
    async with new_uow() as uow:
        await uow.users.add(user)
        await open_inbox(
            uow.projects,
            uow.memberships,
            user_id=user.id,
            project_id=inbox_id(user.id),
            now=user.created_at,
        )
        await uow.commit()
    return user


def reader(user_id: str) -> Readable:
    """A list over the projects where `user_id` is a member (any role)."""
    return Readable(user_id, frozenset(Role))


async def reach(uow: TaskUnitOfWork, user_id: str, task_id: str) -> Task | None:
    """The task when `user_id` is a member of its project (what the old owner-scoped read
    answered for the owner), else None."""
    found = await uow.tasks.get(task_id, user_id)
    return found.task if found is not None and found.membership is not None else None


def memory_tables(tasks: dict[str, Task], *user_ids: str) -> dict[str, dict[str, Any]]:
    """Memory twin tables holding `tasks`, with each user the owner of their inbox."""
    memberships = {
        f"{inbox_id(u)}/{u}": Membership(
            inbox_id(u), u, Role.OWNER, datetime(2026, 1, 1, tzinfo=UTC)
        )
        for u in user_ids
    }
    return {"tasks": tasks, "trash": {}, "memberships": memberships, "comments": {}, "projects": {}}
