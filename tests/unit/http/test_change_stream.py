"""The change stream's loop on the in-memory adapters: a commit wakes it at once, a quiet
stream sends keep-alive comments, and draining ends it."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

from adapters.http.events import _stream
from adapters.http.services import ChangeStreams, Draining
from adapters.memory.events import MemoryEventFeed, MemoryFeedSignal
from adapters.memory.projects import MemoryProjectUnitOfWork
from adapters.memory.uow import MemoryDatabase
from domain.auth import ALL_SCOPES, Principal, PrincipalKind
from domain.events import EventMaker, EventType
from domain.projects import Membership, ProjectDraft, Role, new_project
from domain.use_cases.events import ReadChanges

USER = "0190f5a0-0000-7000-8000-0000000000a1"
PROJECT = "0190f5a0-0000-7000-8000-0000000000c1"


async def test_a_commit_wakes_the_stream_quiet_time_sends_keep_alives_and_draining_ends_it() -> (
    None
):
    database = MemoryDatabase()
    now = datetime.now(UTC)
    database.tables["memberships"][f"{PROJECT}/{USER}"] = Membership(PROJECT, USER, Role.OWNER, now)
    signal = MemoryFeedSignal()
    feed = MemoryEventFeed(database.event_rows, database.tables)
    read = ReadChanges(feed)
    caller = Principal(USER, PrincipalKind.SESSION, ALL_SCOPES, "s", f"user:{USER}")
    streams = ChangeStreams(signal, poll_seconds=1.0, keepalive_seconds=0.3)
    draining = Draining()
    ticket = signal.ticket()
    page = await read.execute(caller, "now")
    body = _stream(read, caller, (ticket, list(page.items), page.next_position), streams, draining)
    assert (await anext(body)).startswith(b":")

    async def next_chunk() -> bytes:
        return await anext(body)

    waiting = asyncio.create_task(next_chunk())
    await asyncio.sleep(0.05)
    project = new_project(project_id=PROJECT, draft=ProjectDraft(name="p"), now=now)
    committed = time.monotonic()
    uow = MemoryProjectUnitOfWork(database, lambda _n: signal.notify())
    async with uow:
        make = EventMaker(lambda: "0190f5a0-0000-7000-8000-0000000000e1", caller, now)
        await uow.events.append(make.project(EventType.PROJECT_UPDATED, project))
        await uow.commit()
    sent = await asyncio.wait_for(waiting, 1.0)
    assert time.monotonic() - committed < 0.1  # woken, not polled
    assert sent.startswith(b"id: 1\nevent: project.updated\ndata: {")

    quiet = time.monotonic()
    assert await asyncio.wait_for(anext(body), 2.0) == b": keep-alive\n\n"
    assert time.monotonic() - quiet >= 0.29

    ending = asyncio.create_task(next_chunk())
    await asyncio.sleep(0.05)
    draining.begin()
    await signal.close()
    try:
        await asyncio.wait_for(ending, 1.5)
    except StopAsyncIteration:
        pass
    else:
        raise AssertionError("the stream went on while draining")
