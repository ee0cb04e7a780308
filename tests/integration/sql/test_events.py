"""The SQL event log on each database and each way of holding the connection: events commit with
their change (and only then), a task created in the inbox names the inbox in its event, activity
reads, the feed's visibility, `now`, and retention with expired cursors."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.memory.events import RecordingEventPublisher
from adapters.sql.events import SqlEventFeed
from domain.errors import CursorExpired
from domain.ports.events import FeedReader
from domain.projects import Role
from domain.tasks import TaskDraft
from domain.use_cases.tasks import CreateTask, DeleteTask, UpdateTask
from tests.integration.sql.conftest import TaskUowFactory, UowFactory, add_user, inbox_id
from tests.unit.projects.support import Who
from tests.unit.tasks.fakes import FakeClock

READER_ROLES = frozenset(Role)


class UuidIds:
    def new_id(self) -> str:
        return str(uuid.uuid4())


async def test_task_changes_record_their_events_in_their_transactions(
    tasks_uow: TaskUowFactory, new_uow: UowFactory, engine: AsyncEngine
) -> None:
    owner = Who((await add_user(new_uow)).id)
    clock, ids, published = FakeClock(), UuidIds(), RecordingEventPublisher()
    feed = SqlEventFeed(engine)
    start = await feed.now()
    create = CreateTask(tasks_uow, clock, ids, published)
    inbox_task = await create.execute(owner, TaskDraft(title="in the inbox"))
    child = await create.execute(owner, TaskDraft(title="child", parent_id=inbox_task.id))
    await UpdateTask(tasks_uow, clock, published, ids=ids).execute(
        owner, inbox_task.id, {"title": "renamed"}
    )
    await DeleteTask(tasks_uow, clock, published, ids=ids).execute(owner, inbox_task.id)

    reader = FeedReader(owner.user_id, READER_ROLES)
    items, _ = await feed.read_after(start, 100, reader)
    seen = [(i.type, i.body["resource"]["id"]) for i in items]  # type: ignore[index]
    assert seen == [
        ("task.created", inbox_task.id),
        ("task.created", child.id),
        ("task.updated", inbox_task.id),
        ("task.deleted", inbox_task.id),
        ("task.deleted", child.id),
    ]
    created = items[0].body
    # The store found the inbox; the event says so, in both places.
    assert created["project_id"] == inbox_id(owner.user_id)
    assert created["data"]["project_id"] == inbox_id(owner.user_id)  # type: ignore[index]
    assert items[2].body["changes"] == {"title": {"from": "in the inbox", "to": "renamed"}}

    async with new_uow() as uow:
        activity = await uow.events.task_activity(inbox_task.id, None, 10)
        latest = await uow.events.latest_of_task(child.id)
        of_project = await uow.events.project_activity(inbox_id(owner.user_id), None, 100)
    assert [a.type for a in activity] == ["task.created", "task.updated", "task.deleted"]
    assert latest is not None
    assert latest.type == "task.deleted"
    assert len([a for a in of_project if a.body["resource"]["id"] == child.id]) == 2  # type: ignore[index]


async def test_an_uncommitted_change_leaves_no_event(
    new_uow: UowFactory, engine: AsyncEngine
) -> None:
    from domain.events import EventMaker, EventType
    from domain.tasks import new_task

    owner = Who((await add_user(new_uow)).id)
    feed = SqlEventFeed(engine)
    start = await feed.now()
    task = new_task(
        task_id=UuidIds().new_id(),
        owner_id=owner.user_id,
        project_id=inbox_id(owner.user_id),
        draft=TaskDraft(title="t"),
        now=FakeClock().now(),
    )
    make = EventMaker(UuidIds().new_id, owner, FakeClock().now())
    async with new_uow() as uow:
        await uow.events.append(make.task(EventType.TASK_CREATED, task))
    items, _ = await feed.read_after(start, 10, FeedReader(owner.user_id, READER_ROLES))
    assert items == []


async def test_the_feed_shows_a_reader_only_their_projects(
    tasks_uow: TaskUowFactory, new_uow: UowFactory, engine: AsyncEngine
) -> None:
    alice = Who((await add_user(new_uow)).id)
    bob = Who((await add_user(new_uow)).id)
    feed = SqlEventFeed(engine)
    start = await feed.now()
    create = CreateTask(tasks_uow, FakeClock(), UuidIds(), RecordingEventPublisher())
    mine = await create.execute(alice, TaskDraft(title="alice's"))
    await create.execute(bob, TaskDraft(title="bob's"))
    items, position = await feed.read_after(start, 100, FeedReader(alice.user_id, READER_ROLES))
    assert [i.body["resource"]["id"] for i in items] == [mine.id]  # type: ignore[index]
    only_other = FeedReader(alice.user_id, READER_ROLES, frozenset({inbox_id(bob.user_id)}))
    assert (await feed.read_after(start, 100, only_other))[0] == []
    # Nothing new: the position stays usable and returns nothing.
    assert (await feed.read_after(position, 100, FeedReader(alice.user_id, READER_ROLES)))[0] == []
    with pytest.raises(ValueError, match="feed position"):
        await feed.read_after("not-a-position", 10)


async def test_retention_deletes_old_events_and_expires_cursors_before_them(
    tasks_uow: TaskUowFactory, new_uow: UowFactory, engine: AsyncEngine
) -> None:
    owner = Who((await add_user(new_uow)).id)
    feed = SqlEventFeed(engine)
    start = await feed.now()
    clock = FakeClock()
    create = CreateTask(tasks_uow, clock, UuidIds(), RecordingEventPublisher())
    await create.execute(owner, TaskDraft(title="old"))
    reader = FeedReader(owner.user_id, READER_ROLES)
    first, _ = await feed.read_after(start, 100, reader)
    assert len(first) == 1
    while await feed.purge_before(clock.now() + timedelta(seconds=1), 1000):
        pass
    with pytest.raises(CursorExpired):
        await feed.read_after(start, 10, reader)
    kept, position = await feed.read_after(None, 10, reader)
    assert kept == []
    assert (await feed.read_after(position, 10, reader))[0] == []


async def test_a_project_delete_records_one_event_per_resource_that_went(
    tasks_uow: TaskUowFactory, new_uow: UowFactory, engine: AsyncEngine
) -> None:
    from domain.projects import ProjectDraft
    from domain.use_cases.projects import CreateComment, CreateProject, DeleteProject

    owner = Who((await add_user(new_uow)).id)
    clock, ids, published = FakeClock(), UuidIds(), RecordingEventPublisher()
    project = await CreateProject(new_uow, clock, ids).execute(owner, ProjectDraft(name="p"))
    create = CreateTask(tasks_uow, clock, ids, published)
    kept = await create.execute(owner, TaskDraft(title="kept", project_id=project.project.id))
    trashed = await create.execute(owner, TaskDraft(title="gone", project_id=project.project.id))
    comment = await CreateComment(new_uow, clock, ids).execute(owner, kept.id, "hi")
    await DeleteTask(tasks_uow, clock, published, ids=ids).execute(owner, trashed.id)
    feed = SqlEventFeed(engine)
    start = await feed.now()

    await DeleteProject(new_uow, clock=clock, ids=ids).execute(owner, project.project.id)

    items, _ = await feed.read_after(start, 100, FeedReader(owner.user_id, READER_ROLES))
    seen = [(i.type, i.body["resource"]["id"]) for i in items]  # type: ignore[index]
    # The tasks (trashed ones too) oldest first; these two share their creation time.
    assert sorted(seen[:2]) == sorted([("task.purged", kept.id), ("task.purged", trashed.id)])
    assert seen[2:] == [
        ("comment.deleted", comment.id),
        ("member.removed", owner.user_id),
        ("project.deleted", project.project.id),
    ]
