"""The purge of sessions past use and of the trash, on the in-memory unit of work: what goes,
what stays, and that one step deletes at most one batch."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from adapters.memory.projects import MemoryProjectUnitOfWork
from adapters.memory.tasks import TrashMark
from adapters.memory.uow import MemoryDatabase, MemoryUnitOfWork
from domain.auth import Session
from domain.events import EventType
from domain.use_cases.maintenance import PurgeExpiredSessions, PurgeExpiredTrash
from tests.unit.tasks.fakes import make_task

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
RETENTION = timedelta(days=7)


class SequentialIds:
    def __init__(self) -> None:
        self._n = 0

    def new_id(self) -> str:
        self._n += 1
        return f"00000000-0000-7000-9000-{self._n:012d}"


class FixedClock:
    def now(self) -> datetime:
        return NOW


def session(number: int, *, expires: timedelta, revoked: timedelta | None = None) -> Session:
    """A session that expires (or was revoked) `expires` (`revoked`) from NOW."""
    return Session(
        id=f"00000000-0000-7000-8000-{number:012d}",
        user_id="00000000-0000-7000-8000-000000000000",
        token_hash=f"hash-{number}",
        created_at=NOW - timedelta(days=30),
        expires_at=NOW + expires,
        revoked_at=None if revoked is None else NOW + revoked,
    )


def purge(database: MemoryDatabase, batch_size: int = 100) -> PurgeExpiredSessions:
    return PurgeExpiredSessions(
        lambda: MemoryUnitOfWork(database),
        FixedClock(),
        retention=RETENTION,
        batch_size=batch_size,
    )


async def test_only_sessions_past_use_for_longer_than_the_retention_go() -> None:
    database = MemoryDatabase()
    rows = {
        "expired long ago": session(1, expires=-RETENTION - timedelta(seconds=1)),
        "revoked long ago": session(2, expires=timedelta(hours=1), revoked=-RETENTION * 2),
        "expired recently": session(3, expires=-RETENTION + timedelta(seconds=1)),
        "revoked recently": session(4, expires=timedelta(hours=1), revoked=-timedelta(days=1)),
        "active": session(5, expires=timedelta(hours=1)),
    }
    database.tables["sessions"] = {row.id: row for row in rows.values()}

    assert await purge(database).step() == 2
    assert await purge(database).step() == 0

    left = set(database.tables["sessions"])
    assert left == {rows[k].id for k in ("expired recently", "revoked recently", "active")}


async def test_one_step_deletes_at_most_one_batch() -> None:
    database = MemoryDatabase()
    expired = [session(n, expires=-RETENTION * 2) for n in range(1, 8)]
    database.tables["sessions"] = {row.id: row for row in expired}
    job = purge(database, batch_size=3)

    assert [await job.step() for _ in range(4)] == [3, 3, 1, 0]
    assert database.tables["sessions"] == {}


def test_a_purge_needs_a_batch_and_a_retention() -> None:
    with pytest.raises(ValueError, match="batch_size"):
        purge(MemoryDatabase(), batch_size=0)


# --- the trash ------------------------------------------------------------------------------------


def trash_purge(database: MemoryDatabase, batch_size: int = 100) -> PurgeExpiredTrash:
    return PurgeExpiredTrash(
        lambda: MemoryProjectUnitOfWork(database),
        FixedClock(),
        SequentialIds(),
        retention=timedelta(days=30),
        batch_size=batch_size,
    )


async def test_the_trash_purge_takes_what_expired_leaves_first_a_batch_at_a_time() -> None:
    database = MemoryDatabase()
    owner = "00000000-0000-7000-8000-000000000000"
    root = make_task("00000000-0000-7000-8000-000000000001", owner_id=owner)
    child = replace(
        make_task("00000000-0000-7000-8000-000000000002", owner_id=owner), parent_id=root.id
    )
    recent = make_task("00000000-0000-7000-8000-000000000003", owner_id=owner)
    live = make_task("00000000-0000-7000-8000-000000000004", owner_id=owner)
    database.tables["tasks"] = {t.id: t for t in (root, child, recent, live)}
    long_ago, lately = NOW - timedelta(days=31), NOW - timedelta(days=29)
    database.tables["trash"] = {
        root.id: TrashMark(long_ago, root.id),
        child.id: TrashMark(long_ago, root.id),
        recent.id: TrashMark(lately, recent.id),
    }
    job = trash_purge(database, batch_size=1)

    assert [await job.step() for _ in range(3)] == [1, 1, 0]  # the child, then its parent
    assert set(database.tables["tasks"]) == {recent.id, live.id}
    assert set(database.tables["trash"]) == {recent.id}
    # One task.purged event each, by the worker, with the task as it was.
    events = [event for event, _ in database.event_rows.rows]
    purged = [e for e in events if e.type is EventType.TASK_PURGED]
    assert [(e.resource_id, e.actor.type, e.actor.user_id) for e in purged] == [
        (child.id, "system", None),
        (root.id, "system", None),
    ]
    assert purged[1].data is not None
    assert purged[1].data["title"] == root.title


def test_a_trash_purge_needs_a_batch_and_a_retention() -> None:
    with pytest.raises(ValueError, match="batch_size"):
        trash_purge(MemoryDatabase(), batch_size=0)


async def test_old_events_are_purged_in_batches_and_their_cursors_expire() -> None:
    from adapters.memory.events import MemoryEventFeed, MemoryEventRows
    from domain.errors import CursorExpired
    from domain.events import Actor, Event, EventType, ResourceType
    from domain.use_cases.maintenance import PurgeOldEvents

    now = datetime(2026, 12, 3, tzinfo=UTC)
    rows = MemoryEventRows()
    actor = Actor("user", "u", "u", "http")

    def event(n: int, days_ago: int) -> Event:
        at = now - timedelta(days=days_ago)
        return Event(
            f"e{n}", EventType.TASK_CREATED, at, "p", ResourceType.TASK, "t", actor, None, {}
        )

    rows.extend([event(1, 40), event(2, 35), event(3, 31), event(4, 5)])
    feed = MemoryEventFeed(rows, {"memberships": {}})
    clock = type("Clock", (), {"now": lambda _self: now})()
    purge = PurgeOldEvents(feed, clock, retention=timedelta(days=30), batch_size=2)
    assert [await purge.step() for _ in range(3)] == [2, 1, 0]
    items, _ = await feed.read_after(None, 10)
    assert [i.event_id for i in items] == ["e4"]
    with pytest.raises(CursorExpired):
        await feed.read_after("1", 10)
    assert [i.event_id for i in (await feed.read_after("3", 10))[0]] == ["e4"]
