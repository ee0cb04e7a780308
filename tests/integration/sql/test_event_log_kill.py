"""A writer killed with SIGKILL in the middle of its transactions: no event without its change, no
change without its event, and the feed still walks every event exactly once.

A separate process runs the real task use cases (create, create a subtask, update, delete to the
trash) through the SQL unit of work, several at once, for as long as it lives. Once it has
committed some work the test closes a gate inside the database, so that every unit that runs a
statement on `tasks` (stage "change": the change is written, its event not yet, except where
both are one statement) or an insert into `events` (stage "event": both written, no commit yet)
stops right there with its transaction open. Then the process is killed. The gate:

- PostgreSQL: triggers (added to this test's own schema) take a shared advisory lock that the
  test holds exclusively; the test sees every writer unit wait on it in `pg_locks`, each in a
  transaction that holds an id. The writer's sessions check for a lost client while they wait
  (`client_connection_check_interval`), so after the kill PostgreSQL ends them, and rolls their
  transactions back, with the gate still closed; the test opens it only afterwards.
- SQLite: temporary triggers of the writer's own connections call a function that blocks the
  writer's thread inside the transaction once a gate file exists, and says so in a file.

Afterwards every task's events are its history with nothing missing or extra (versions 1..n,
one `task.created`, a `task.deleted` exactly when it is in the trash), every task event names a
task that exists, and readers of the feed (one that walked throughout, one from the start after)
see every stored event exactly once in increasing positions; on PostgreSQL the feed's horizon,
held back while the killed transactions were open, moves past them.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import random
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import msgspec
import pytest
from sqlalchemy import event, func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.memory.events import RecordingEventPublisher
from adapters.security.ids import SystemClock, UuidV7Generator
from adapters.sql.engine import create_engine
from adapters.sql.events import SqlEventFeed, parse_position
from adapters.sql.tables import events, tasks
from adapters.sql.uow import SqlUnitOfWork
from domain.tasks import TaskDraft
from domain.use_cases.tasks import CreateTask, DeleteTask, UpdateTask
from tests.integration.scale.processes import asyncpg_dsn
from tests.integration.sql.conftest import (
    _postgres_engine,
    _search_path,
    _sqlite_engine,
    add_user,
)
from tests.unit.projects.support import Who

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

STAGES = {"change": 1, "event": 2}
WORKERS = {"postgresql": 4, "sqlite": 1}  # SQLite has one writer at a time
COMMITTED_FIRST = 40  # events committed before the gate closes
WAIT_SECONDS = 60.0
# Long enough that no statement waiting at the gate is cancelled before the kill.
STATEMENT_TIMEOUT_MS = 120_000


async def _until[T](
    probe: Callable[[], Awaitable[T | None]], what: str, seconds: float = WAIT_SECONDS
) -> T:
    """Poll `probe` until it answers something truthy; fail after `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        answer = await probe()
        if answer:
            return answer
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {seconds:.0f}s waiting until {what}")
        await asyncio.sleep(0.05)


# --- the writer process --------------------------------------------------------------------------


@dataclass(frozen=True)
class Writer:
    """What the writer process needs (it is spawned: plain values only)."""

    url: str
    uow: str  # sqlalchemy or raw (PostgreSQL)
    user_ids: tuple[str, ...]  # one per worker: no row (an owner's task count) is shared
    search_path: str = ""  # PostgreSQL: the test's schema
    application_name: str = ""  # PostgreSQL: how the test finds the writer's backends
    gate: str = ""  # SQLite: the gate closes once this file exists
    paused: str = ""  # SQLite: written by a unit stopped at the gate
    stage: int = 0  # SQLite: where the gate stops a unit (STAGES)


def _sqlite_gate(writer: Writer) -> Callable[[int], int]:
    gate, paused = Path(writer.gate), Path(writer.paused)

    def at(stage: int) -> int:
        if stage == writer.stage and gate.exists():
            paused.touch()
            time.sleep(3600)  # inside the transaction, until the test kills the process
        return 0

    return at


def _writer_engine(writer: Writer) -> AsyncEngine:
    engine = create_engine(
        writer.url, pool_size=len(writer.user_ids) + 2, statement_timeout_ms=STATEMENT_TIMEOUT_MS
    )
    if writer.gate:
        gate = _sqlite_gate(writer)

        @event.listens_for(engine.sync_engine, "connect")
        def _gated(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.create_function("fault_gate", 1, gate)
            cursor = dbapi_connection.cursor()
            for op in ("INSERT", "UPDATE", "DELETE"):
                cursor.execute(
                    f"CREATE TEMP TRIGGER fault_gate_tasks_{op.lower()} AFTER {op} ON main.tasks "
                    "BEGIN SELECT fault_gate(1); END"
                )
            cursor.execute(
                "CREATE TEMP TRIGGER fault_gate_events AFTER INSERT ON main.events "
                "BEGIN SELECT fault_gate(2); END"
            )
            cursor.close()

    else:

        @event.listens_for(engine.sync_engine, "do_connect")
        def _named(_dialect: Any, _record: Any, _args: Any, kwargs: dict[str, Any]) -> None:
            settings = kwargs.setdefault("server_settings", {})
            settings["search_path"] = writer.search_path
            settings["application_name"] = writer.application_name
            # A backend waiting at the gate notices its client is gone (it checks while it
            # waits) and ends its transaction without finishing the statement.
            settings["client_connection_check_interval"] = "100"

    return engine


async def _work(
    uows: Callable[[], SqlUnitOfWork], caller: Who, worker: int, rng: random.Random
) -> None:
    """Real use cases on this worker's own tasks, until the process dies."""
    clock, ids, published = SystemClock(), UuidV7Generator(), RecordingEventPublisher(100)
    create = CreateTask(uows, clock, ids, published)
    update = UpdateTask(uows, clock, published, ids=ids)
    delete = DeleteTask(uows, clock, published, ids=ids)
    n = 0
    while True:
        n += 1
        name = f"w{worker} t{n}"
        task = await create.execute(caller, TaskDraft(title=name))
        if rng.random() < 0.5:
            child = await create.execute(caller, TaskDraft(title=f"{name} c", parent_id=task.id))
            await update.execute(caller, child.id, {"status": "done"})
        for r in range(rng.randint(1, 2)):
            await update.execute(caller, task.id, {"title": f"{name} r{r}"})
        if rng.random() < 0.4:
            await delete.execute(caller, task.id)  # the subtask goes with it


async def _write(writer: Writer) -> None:
    engine = _writer_engine(writer)
    raw = writer.uow == "raw"
    await asyncio.gather(
        *(
            _work(lambda: SqlUnitOfWork(engine, raw=raw), Who(user_id), w, random.Random(w))
            for w, user_id in enumerate(writer.user_ids)
        )
    )


def _writer_main(writer: Writer) -> None:
    asyncio.run(_write(writer))


# --- the gate on PostgreSQL ----------------------------------------------------------------------


async def _add_gate(engine: AsyncEngine, key: int) -> None:
    """Triggers taking the shared advisory lock (key, stage) after each statement on `tasks`
    (stage 1) and each insert into `events` (stage 2): free until the test holds it."""
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "CREATE FUNCTION fault_gate() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                f"PERFORM pg_advisory_xact_lock_shared({key}, CAST(TG_ARGV[0] AS integer)); "
                "RETURN NULL; END $$"
            )
        )
        await conn.execute(
            text(
                "CREATE TRIGGER fault_gate AFTER INSERT OR UPDATE OR DELETE ON tasks "
                "FOR EACH STATEMENT EXECUTE FUNCTION fault_gate(1)"
            )
        )
        await conn.execute(
            text(
                "CREATE TRIGGER fault_gate AFTER INSERT ON events "
                "FOR EACH STATEMENT EXECUTE FUNCTION fault_gate(2)"
            )
        )


@dataclass(frozen=True)
class Waiting:
    pid: int
    xid: int | None  # the 32-bit id of its transaction (None: it wrote nothing yet)


async def _waiting_at_gate(conn: Any, key: int, stage: int) -> list[Waiting]:
    rows = await conn.fetch(
        "SELECT a.pid, CAST(a.backend_xid AS text) AS xid FROM pg_locks l "
        "JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' "
        "AND NOT l.granted AND CAST(l.classid AS text) = $1 AND CAST(l.objid AS text) = $2 "
        "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        str(key),
        str(stage),
    )
    return [Waiting(r["pid"], None if r["xid"] is None else int(r["xid"])) for r in rows]


async def _full_xids(conn: Any, xids: list[int]) -> list[int]:
    """The 64-bit ids (what the feed's positions hold) of running transactions' 32-bit ones:
    each is the one within 2**31 of a current 64-bit id."""
    near = int(await conn.fetchval("SELECT CAST(pg_snapshot_xmax(pg_current_snapshot()) AS text)"))
    full = []
    for xid in xids:
        ahead = (xid - near) % 2**32
        full.append(near + (ahead - 2**32 if ahead >= 2**31 else ahead))
    return full


# --- what must hold afterwards -------------------------------------------------------------------

_decode = msgspec.json.Decoder()


async def _stored(engine: AsyncEngine) -> tuple[dict[str, tuple[int, bool]], list[Any]]:
    """Every task (id: version, in the trash) and every event in feed order."""
    async with engine.connect() as conn:
        task_rows = {
            str(row.id): (int(row.version), row.deleted_at is not None)
            for row in await conn.execute(select(tasks.c.id, tasks.c.version, tasks.c.deleted_at))
        }
        event_rows = list(
            await conn.execute(
                select(events.c.id, events.c.type, events.c.resource_type, events.c.body).order_by(
                    events.c.txid, events.c.seq
                )
            )
        )
    return task_rows, event_rows


def _assert_consistent(task_rows: dict[str, tuple[int, bool]], event_rows: list[Any]) -> None:
    """Each task's events are its whole history: `task.created` once at version 1, one
    `task.updated` per later version up to the row's, and `task.deleted` (of the version
    before the trash's bump) last exactly when the task is in the trash; no task event names a
    task that does not exist."""
    history: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for row in event_rows:
        if row.resource_type != "task":
            continue
        body = _decode.decode(row.body)
        history[body["resource"]["id"]].append((row.type, int(body["data"]["version"])))
    orphans = set(history) - set(task_rows)
    assert not orphans, f"events of tasks that do not exist: {sorted(orphans)[:5]}"
    silent = set(task_rows) - set(history)
    assert not silent, f"tasks without any event: {sorted(silent)[:5]}"
    for task_id, (version, trashed) in task_rows.items():
        types = [kind for kind, _ in history[task_id]]
        assert types[0] == "task.created", (task_id, types)
        assert types.count("task.created") == 1, (task_id, types)
        kept = [v for kind, v in history[task_id] if kind != "task.deleted"]
        if trashed:
            assert types.count("task.deleted") == 1, (task_id, types)
            assert history[task_id][-1] == ("task.deleted", version - 1), (task_id, version)
            assert kept == list(range(1, version)), (task_id, version, kept)
        else:
            assert "task.deleted" not in types, (task_id, types)
            assert kept == list(range(1, version + 1)), (task_id, version, kept)


async def _walk(
    feed: SqlEventFeed, position: str | None, until: str, limit: int
) -> tuple[list[str], str | None]:
    """Event ids read from `position` (None: the start) until a read finds nothing and its
    position is at `until` or beyond; asserts increasing positions."""
    seen: list[str] = []
    last: tuple[int, int] | None = None
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        items, position = await feed.read_after(position, limit)
        for item in items:
            at = parse_position(item.position)
            assert last is None or at > last, f"position {at} after {last}"
            last = at
            seen.append(item.event_id)
        if not items and parse_position(position) >= parse_position(until):
            return seen, position
        assert time.monotonic() < deadline, f"the feed did not reach {until} (at {position})"
        if not items:
            await asyncio.sleep(0.05)


def _assert_each_once(seen: list[str], event_rows: list[Any], who: str) -> None:
    twice = [e for e, n in Counter(seen).items() if n > 1]
    assert not twice, f"{who} saw events twice: {twice[:5]}"
    stored = {str(row.id) for row in event_rows}
    assert set(seen) == stored, (
        f"{who}: missed {sorted(stored - set(seen))[:5]}, "
        f"saw what is not stored {sorted(set(seen) - stored)[:5]}"
    )


class Walker:
    """A reader walking the feed in small pages the whole time, as a client of the changes
    would."""

    def __init__(self, feed: SqlEventFeed, position: str | None) -> None:
        self.feed, self.position = feed, position
        self.seen: list[str] = []
        self.last: tuple[int, int] | None = None
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            items, self.position = await self.feed.read_after(self.position, 7)
            for item in items:
                at = parse_position(item.position)
                assert self.last is None or at > self.last, f"position {at} after {self.last}"
                self.last = at
                self.seen.append(item.event_id)
            if not items:
                await asyncio.sleep(0.02)

    async def stop(self) -> tuple[list[str], str | None]:
        """What it saw so far; raises what stopped it, if anything did."""
        if self._task.done() and not self._task.cancelled():
            self._task.result()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        return self.seen, self.position


# --- the test ------------------------------------------------------------------------------------


TARGETS = [
    ("postgresql", "sqlalchemy", "change"),
    ("postgresql", "sqlalchemy", "event"),
    ("postgresql", "raw", "change"),
    ("postgresql", "raw", "event"),
    ("sqlite", "sqlalchemy", "change"),
    ("sqlite", "sqlalchemy", "event"),
]


@pytest.fixture
def server_url(kind: str, request: pytest.FixtureRequest) -> str:
    """The PostgreSQL server's URL (resolved outside the event loop: its fixture runs asyncio
    itself); "" for SQLite."""
    return "" if kind == "sqlite" else str(request.getfixturevalue("postgres_url"))


@contextlib.asynccontextmanager
async def _fresh_engine(server_url: str, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """A migrated database of this test's own (the gate's triggers change its schema): a new
    schema on PostgreSQL, a new file for SQLite."""
    if server_url:
        made = contextlib.asynccontextmanager(_postgres_engine)(server_url)
    else:
        made = contextlib.asynccontextmanager(_sqlite_engine)(tmp_path / "taskhub.db")
    async with made as engine:
        yield engine


async def _events_count(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(events))).scalar_one())


@pytest.mark.parametrize(("kind", "uow", "stage"), TARGETS)
async def test_a_writer_killed_mid_transaction_leaves_every_change_with_its_event(
    kind: str, uow: str, stage: str, server_url: str, tmp_path: Path
) -> None:
    async with _fresh_engine(server_url, tmp_path) as engine:
        await _kill_mid_transaction(engine, kind, uow, STAGES[stage], tmp_path)


async def _kill_mid_transaction(
    engine: AsyncEngine, kind: str, uow: str, stage: int, tmp_path: Path
) -> None:
    users = [await add_user(lambda: SqlUnitOfWork(engine)) for _ in range(WORKERS[kind])]
    user_ids = tuple(user.id for user in users)
    feed = SqlEventFeed(engine)
    before = {str(row.id) for row in (await _stored(engine))[1]}
    postgresql = kind == "postgresql"
    key = random.randint(1, 2**31 - 1)
    url = engine.url.render_as_string(hide_password=False)
    if postgresql:
        await _add_gate(engine, key)
        writer = Writer(
            url,
            uow,
            user_ids,
            search_path=await _search_path(engine),
            application_name=f"fault-writer-{key}",
        )
    else:
        writer = Writer(
            url,
            uow,
            user_ids,
            gate=str(tmp_path / "gate"),
            paused=str(tmp_path / "paused"),
            stage=stage,
        )

    walker = Walker(feed, await feed.now())
    process = multiprocessing.get_context("spawn").Process(target=_writer_main, args=(writer,))
    gate: Any = None
    try:
        process.start()

        async def committed() -> bool:
            assert process.is_alive(), f"the writer died (exit code {process.exitcode})"
            return await _events_count(engine) >= COMMITTED_FIRST

        await _until(committed, f"the writer committed {COMMITTED_FIRST} events")

        blocked: list[int] = []
        if postgresql:
            gate = await asyncpg.connect(asyncpg_dsn(url))
            await gate.execute("SELECT pg_advisory_lock($1, $2)", key, stage)

            async def all_waiting() -> list[Waiting]:
                assert process.is_alive(), f"the writer died (exit code {process.exitcode})"
                waiting = await _waiting_at_gate(gate, key, stage)
                return waiting if len(waiting) == len(user_ids) else []

            waiting = await _until(all_waiting, "every unit of the writer waits at the gate")
            # Each is in a transaction that has written (it holds a transaction id).
            assert all(w.xid is not None for w in waiting), waiting
            blocked = await _full_xids(gate, [w.xid for w in waiting if w.xid is not None])
            held = await feed.now()
            assert parse_position(held)[0] < min(blocked), "the feed read past open transactions"
        else:
            await asyncio.to_thread(Path(writer.gate).touch)

            async def paused() -> bool:
                assert process.is_alive(), f"the writer died (exit code {process.exitcode})"
                return await asyncio.to_thread(Path(writer.paused).exists)

            await _until(paused, "the writer stopped inside a transaction")

        process.kill()  # SIGKILL
        process.join(timeout=WAIT_SECONDS)
        assert process.exitcode == -9, process.exitcode

        if postgresql:

            async def backends_gone() -> bool:
                async with engine.connect() as conn:
                    left = (
                        await conn.execute(
                            text(
                                "SELECT count(*) FROM pg_stat_activity "
                                "WHERE application_name = :name"
                            ),
                            {"name": writer.application_name},
                        )
                    ).scalar_one()
                return left == 0

            # With the gate still closed: nothing but the lost client ends them.
            await _until(backends_gone, "PostgreSQL ended the killed writer's sessions")
            await gate.close()
            gate = None

            async def horizon_moved() -> bool:
                return parse_position(await feed.now())[0] >= max(blocked)

            await _until(horizon_moved, f"the feed's horizon passed the killed {blocked}")
        end = await feed.now()

        # The walker, which read the whole time, catches up without an error.
        walked, position = await walker.stop()
        more, _ = await _walk(feed, position, end, 7)
        task_rows, event_rows = await _stored(engine)
    finally:
        if gate is not None:
            await gate.close()
        if process.is_alive():
            process.kill()
        process.join(timeout=WAIT_SECONDS)
        with contextlib.suppress(Exception):
            await walker.stop()

    assert len(event_rows) - len(before) >= COMMITTED_FIRST
    _assert_consistent(task_rows, event_rows)
    # The user's own events (the inbox's) came before the walker's start; it saw the rest once.
    since = [row for row in event_rows if str(row.id) not in before]
    _assert_each_once(walked + more, since, "the walker")
    from_start, _ = await _walk(feed, None, end, 5)
    _assert_each_once(from_start, event_rows, "a reader from the start")
    assert from_start[len(before) :] == walked + more, "the two readers saw different orders"
