"""The change feed under concurrent writers: every committed event exactly once, none of a
rolled-back transaction, positions always increasing.

Writers run in several processes (as replicas would), each committing events in transactions
that hold their transaction id for a random while before committing (some for long), so later
transactions often commit first; some roll back. A reader walks the feed with small pages the
whole time. A feed ordered by the insert sequence alone would pass over the slow transactions'
events (their numbers are behind the reader by the time they commit); this one must not.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import random
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from adapters.sql.engine import create_engine
from adapters.sql.events import SqlEventFeed, parse_position
from adapters.sql.uow import SqlUnitOfWork
from domain.events import Actor, Event, EventType, ResourceType
from tests.integration.sql.conftest import Database, _search_path

POSTGRESQL_ONLY = True  # several writer processes: SQLite serialises them (one writer)

WRITERS = 4
TRANSACTIONS = 25


def _event(run_id: str) -> Event:
    event_id = str(uuid.uuid4())
    return Event(
        id=event_id,
        type=EventType.TASK_UPDATED,
        occurred_at=datetime.now(UTC),
        project_id=run_id,
        resource_type=ResourceType.TASK,
        resource_id=event_id,
        actor=Actor("user", run_id, run_id, "http"),
        request_id=None,
        data={"id": event_id},
    )


async def _write(url: str, settings: dict[str, Any], run_id: str, seed: int) -> list[str]:
    """Commit TRANSACTIONS transactions of 1-3 events each (a few rolled back instead); the ids
    of the committed events."""
    rng = random.Random(seed)
    if settings.get("pgbouncer"):
        engine = create_engine(url, pool_size=1, pgbouncer=True)
    else:
        engine = create_async_engine(url, pool_size=1, **settings)
    committed: list[str] = []
    try:
        for n in range(TRANSACTIONS):
            events = [_event(run_id) for _ in range(rng.randint(1, 3))]
            async with SqlUnitOfWork(engine) as uow:
                await uow.events.append(*events)  # the transaction id is taken here
                # Hold it: every fifth transaction for long, the others a little.
                await asyncio.sleep(0.3 if n % 5 == 0 else rng.random() * 0.03)
                if rng.random() < 0.1:
                    await uow.rollback()
                    continue
                await uow.commit()
            committed += [e.id for e in events]
    finally:
        await engine.dispose()
    return committed


def _writer(url: str, settings: dict[str, Any], run_id: str, seed: int, out: Any) -> None:
    out.put(asyncio.run(_write(url, settings, run_id, seed)))


async def test_concurrent_writers_events_are_each_seen_once_in_increasing_positions(
    engine: AsyncEngine, database: Database
) -> None:
    url = engine.url.render_as_string(hide_password=False)
    settings: dict[str, Any] = {}
    if database.kind == "pgbouncer":
        settings["pgbouncer"] = True
    else:
        settings["connect_args"] = {"server_settings": {"search_path": await _search_path(engine)}}
    run_id = str(uuid.uuid4())
    feed = SqlEventFeed(engine)
    position = await feed.now()

    spawn = multiprocessing.get_context("spawn")
    results = spawn.Queue()
    writers = [
        spawn.Process(target=_writer, args=(url, settings, run_id, seed, results))
        for seed in range(WRITERS)
    ]
    for writer in writers:
        writer.start()

    seen: list[str] = []
    positions: list[tuple[int, int]] = []
    quiet_reads = 0
    while quiet_reads < 3:
        items, position = await feed.read_after(position, 7)
        for item in items:
            positions.append(parse_position(item.position))
            if item.project_id == run_id:
                seen.append(item.event_id)
        running = any(w.is_alive() for w in writers)
        quiet_reads = 0 if running or items else quiet_reads + 1
        if not items:
            await asyncio.sleep(0.01)

    committed: list[str] = []
    for writer in writers:
        committed += results.get(timeout=60)
        writer.join(timeout=60)
        assert writer.exitcode == 0
    assert positions == sorted(positions)
    assert len(positions) == len(set(positions))
    assert len(seen) == len(set(seen)), "an event was delivered twice"
    assert set(seen) == set(committed), "an event was skipped, or one rolled back appeared"
    assert len(committed) > WRITERS * TRANSACTIONS  # (most transactions hold several events)
