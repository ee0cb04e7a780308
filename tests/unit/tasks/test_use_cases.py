"""Task use cases over the in-memory unit of work."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Self, override

import pytest

from adapters.memory.events import RecordingEventPublisher
from adapters.memory.projects import MemoryProjectTasks, MemoryProjectUnitOfWork
from adapters.memory.tasks import MemoryTaskRepository
from adapters.memory.uow import MemoryDatabase
from domain.errors import Conflict, Invalid, NotFound, PreconditionFailed
from domain.events import TaskEvent, TaskEventName
from domain.ports.tasks import TaskUnitOfWork
from domain.projects import Membership, Role, new_inbox
from domain.task_queries import CursorPosition, TaskFilter, TaskQuery, TaskSort
from domain.tasks import Task, TaskDraft, TaskStatus
from domain.use_cases.tasks import CreateTask, DeleteTask, GetTask, ListTasks, UpdateTask
from tests.unit.projects.support import Who
from tests.unit.tasks.fakes import T0, FakeClock, SequentialIds, make_task

ALICE_ID, BOB_ID = "user-alice", "user-bob"
ALICE, BOB = Who(ALICE_ID), Who(BOB_ID)


@dataclass
class World:
    database: MemoryDatabase = field(default_factory=MemoryDatabase)
    clock: FakeClock = field(default_factory=FakeClock)
    ids: SequentialIds = field(default_factory=SequentialIds)
    events: RecordingEventPublisher = field(default_factory=RecordingEventPublisher)

    inbox: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Each user's inbox, with them as its owner (what sign-up makes).
        for user_id in (ALICE_ID, BOB_ID):
            project_id = self.ids.new_id()
            self.inbox[user_id] = project_id
            member = Membership(project_id, user_id, Role.OWNER, T0)
            self.database.tables["projects"][project_id] = new_inbox(project_id=project_id, now=T0)
            self.database.tables["memberships"][f"{project_id}/{user_id}"] = member

    def uow(self) -> TaskUnitOfWork:
        return MemoryProjectUnitOfWork(self.database)

    @property
    def create(self) -> CreateTask:
        return CreateTask(self.uow, self.clock, self.ids, self.events)

    @property
    def get(self) -> GetTask:
        return GetTask(self.uow)

    @property
    def list(self) -> ListTasks:
        return ListTasks(self.uow)

    @property
    def update(self) -> UpdateTask:
        return UpdateTask(self.uow, self.clock, self.events, ids=self.ids)

    @property
    def delete(self) -> DeleteTask:
        return DeleteTask(self.uow, self.clock, self.events, ids=self.ids)

    def stored(self) -> dict[str, Task]:
        return self.database.tables["tasks"]


@pytest.fixture
def world() -> World:
    return World()


async def test_create_stores_and_announces(world: World) -> None:
    task = await world.create.execute(ALICE, TaskDraft(title=" Buy milk ", labels=["home"]))
    assert task.title == "Buy milk"
    assert task.owner_id == ALICE_ID
    assert task.project_id == world.inbox[ALICE_ID]
    assert world.stored() == {task.id: task}
    assert world.events.events == [TaskEvent(TaskEventName.CREATED, task.id, ALICE_ID, T0, 1)]


async def test_invalid_create_stores_nothing(world: World) -> None:
    with pytest.raises(Invalid):
        await world.create.execute(ALICE, TaskDraft(title=""))
    assert world.stored() == {}
    assert world.events.events == []


async def test_get_is_scoped_to_the_owner(world: World) -> None:
    task = await world.create.execute(ALICE, TaskDraft(title="t"))
    assert await world.get.execute(ALICE, task.id) == task
    with pytest.raises(NotFound):
        await world.get.execute(BOB, task.id)


@pytest.mark.parametrize("bad_id", ["", "42", "not-a-uuid", "00000000-0000-0000-0000-00000000000A"])
async def test_malformed_ids_are_not_found(world: World, bad_id: str) -> None:
    with pytest.raises(NotFound):
        await world.get.execute(ALICE, bad_id)
    with pytest.raises(NotFound):
        await world.update.execute(ALICE, bad_id, {"title": "x"})
    with pytest.raises(NotFound):
        await world.delete.execute(ALICE, bad_id)


async def test_update_merges_bumps_and_announces(world: World) -> None:
    task = await world.create.execute(ALICE, TaskDraft(title="t", description="d"))
    later = world.clock.advance(60)
    updated = await world.update.execute(
        ALICE, task.id, {"status": "done", "description": None}, expected_version=1
    )
    assert (updated.status, updated.description, updated.completed_at) == (
        TaskStatus.DONE,
        None,
        later,
    )
    assert (updated.version, updated.updated_at) == (2, later)
    assert await world.get.execute(ALICE, task.id) == updated
    assert world.events.events[-1] == TaskEvent(TaskEventName.UPDATED, task.id, ALICE_ID, later, 2)


async def test_noop_update_writes_nothing_and_announces_nothing(world: World) -> None:
    task = await world.create.execute(ALICE, TaskDraft(title="t", priority=2))
    world.clock.advance(60)
    same = await world.update.execute(ALICE, task.id, {"priority": 2, "title": "t "})
    assert same == task
    assert len(world.events.events) == 1


async def test_update_with_stale_version_fails_and_keeps_the_task(world: World) -> None:
    task = await world.create.execute(ALICE, TaskDraft(title="t"))
    await world.update.execute(ALICE, task.id, {"title": "v2"})
    with pytest.raises(PreconditionFailed):
        await world.update.execute(ALICE, task.id, {"title": "v3"}, expected_version=1)
    assert (await world.get.execute(ALICE, task.id)).title == "v2"


async def test_precondition_is_checked_before_the_patch(world: World) -> None:
    task = await world.create.execute(ALICE, TaskDraft(title="t"))
    with pytest.raises(PreconditionFailed):
        await world.update.execute(ALICE, task.id, {"title": None}, expected_version=5)


async def test_invalid_patch_changes_nothing(world: World) -> None:
    task = await world.create.execute(ALICE, TaskDraft(title="t"))
    with pytest.raises(Invalid):
        await world.update.execute(ALICE, task.id, {"title": "ok", "priority": 0})
    assert await world.get.execute(ALICE, task.id) == task


async def test_other_owner_cannot_update_or_delete(world: World) -> None:
    task = await world.create.execute(ALICE, TaskDraft(title="t"))
    with pytest.raises(NotFound):
        await world.update.execute(BOB, task.id, {"title": "mine"})
    with pytest.raises(NotFound):
        await world.delete.execute(BOB, task.id)
    assert await world.get.execute(ALICE, task.id) == task


async def test_delete_removes_and_announces(world: World) -> None:
    task = await world.create.execute(ALICE, TaskDraft(title="t"))
    await world.update.execute(ALICE, task.id, {"title": "u"})
    gone_at = world.clock.advance(5)
    await world.delete.execute(ALICE, task.id, expected_version=2)
    with pytest.raises(NotFound):
        await world.get.execute(ALICE, task.id)
    with pytest.raises(NotFound):
        await world.delete.execute(ALICE, task.id)
    assert world.events.events[-1] == TaskEvent(
        TaskEventName.DELETED, task.id, ALICE_ID, gone_at, 2
    )


async def test_delete_with_stale_version_keeps_the_task(world: World) -> None:
    task = await world.create.execute(ALICE, TaskDraft(title="t"))
    await world.update.execute(ALICE, task.id, {"title": "u"})
    with pytest.raises(PreconditionFailed):
        await world.delete.execute(ALICE, task.id, expected_version=1)
    assert (await world.get.execute(ALICE, task.id)).version == 2


async def test_list_pages_with_next_position(world: World) -> None:
    created = []
    for n in range(5):
        created.append(await world.create.execute(ALICE, TaskDraft(title=f"t{n}")))
        world.clock.advance(1)
    await world.create.execute(BOB, TaskDraft(title="bob's"))
    query = TaskQuery(limit=2)
    first = await world.list.execute(ALICE, query)
    assert [t.title for t in first.items] == ["t4", "t3"]
    assert first.next_position == CursorPosition(created[3].created_at, created[3].id)
    second = await world.list.execute(ALICE, query.at(first.next_position))
    third = await world.list.execute(ALICE, query.at(second.next_position))
    assert [t.title for t in second.items + third.items] == ["t2", "t1", "t0"]
    assert third.next_position is None


async def test_list_exactly_full_last_page_has_no_next(world: World) -> None:
    for n in range(4):
        await world.create.execute(ALICE, TaskDraft(title=f"t{n}"))
    page = await world.list.execute(ALICE, TaskQuery(limit=4))
    assert len(page.items) == 4
    assert page.next_position is None


async def test_list_empty(world: World) -> None:
    page = await world.list.execute(ALICE, TaskQuery())
    assert page == (await world.list.execute(ALICE, TaskQuery()))
    assert (page.items, page.next_position) == ((), None)


# --- the repository's filters and orders, one by one ----------------------------------------------


def uid(n: int) -> str:
    return f"00000000-0000-0000-0000-{n:012x}"


async def titles(world: World, query: TaskQuery) -> list[str]:
    page = await world.list.execute(ALICE, query)
    return [t.title for t in page.items]


@pytest.fixture
def seeded(world: World) -> World:
    day = timedelta(days=1)
    rows = [
        make_task(uid(1), title="Alpha", labels=("a", "b"), due_at=T0 + day, priority=2),
        make_task(uid(2), title="beta", description="Has STRASSE", labels=("b",), priority=4),
        make_task(uid(3), title="Gamma", status=TaskStatus.DONE, due_at=T0 + 3 * day),
        make_task(uid(4), title="delta", labels=("a",), due_at=T0 + day, priority=4),
        make_task(uid(5), title="Bob's", owner_id=BOB_ID, labels=("a",)),
    ]
    for n, row in enumerate(rows):
        stamp = T0 + timedelta(minutes=n)
        owner = BOB_ID if row.owner_id == BOB_ID else ALICE_ID
        world.stored()[row.id] = make_task(
            row.id,
            owner_id=owner,
            project_id=world.inbox[owner],
            title=row.title,
            description=row.description,
            status=row.status,
            priority=row.priority,
            labels=row.labels,
            due_at=row.due_at,
            created_at=stamp,
            updated_at=T0 + timedelta(minutes=10 - n),
        )
    return world


@pytest.mark.parametrize(
    ("wanted", "expected"),
    [
        (TaskFilter(), ["delta", "Gamma", "beta", "Alpha"]),
        (TaskFilter(status=TaskStatus.DONE), ["Gamma"]),
        (TaskFilter(priority=4), ["delta", "beta"]),
        (TaskFilter(labels=("a",)), ["delta", "Alpha"]),
        (TaskFilter(labels=("a", "b")), ["Alpha"]),
        (TaskFilter(labels=("zzz",)), []),
        (TaskFilter(due_before=T0 + timedelta(days=3)), ["delta", "Alpha"]),
        (TaskFilter(due_after=T0 + timedelta(days=3)), ["Gamma"]),
        (TaskFilter(due_after=T0 + timedelta(days=1, seconds=1)), ["Gamma"]),
        (TaskFilter(q="ALP"), ["Alpha"]),
        (TaskFilter(q="straße"), ["beta"]),
        (TaskFilter(q="a", priority=4, labels=("a",)), ["delta"]),
    ],
)
async def test_filters(seeded: World, wanted: TaskFilter, expected: list[str]) -> None:
    assert await titles(seeded, TaskQuery(wanted)) == expected


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        (TaskSort.CREATED_AT, ["Alpha", "beta", "Gamma", "delta"]),
        (TaskSort.CREATED_AT_DESC, ["delta", "Gamma", "beta", "Alpha"]),
        (TaskSort.UPDATED_AT, ["delta", "Gamma", "beta", "Alpha"]),
        (TaskSort.UPDATED_AT_DESC, ["Alpha", "beta", "Gamma", "delta"]),
        # ties broken by id in the sort's direction; NULL due_at counts as +infinity
        (TaskSort.DUE_AT, ["Alpha", "delta", "Gamma", "beta"]),
        (TaskSort.DUE_AT_DESC, ["beta", "Gamma", "delta", "Alpha"]),
        (TaskSort.PRIORITY, ["Gamma", "Alpha", "beta", "delta"]),
        (TaskSort.PRIORITY_DESC, ["delta", "beta", "Alpha", "Gamma"]),
    ],
)
async def test_sorts(seeded: World, sort: TaskSort, expected: list[str]) -> None:
    assert await titles(seeded, TaskQuery(sort=sort)) == expected


@pytest.mark.parametrize(
    ("sort", "after", "expected"),
    [
        (
            TaskSort.DUE_AT,
            CursorPosition(T0 + timedelta(days=1), uid(1)),
            ["delta", "Gamma", "beta"],
        ),
        (TaskSort.DUE_AT, CursorPosition(None, uid(1)), ["beta"]),
        (TaskSort.DUE_AT, CursorPosition(None, uid(2)), []),
        (TaskSort.DUE_AT_DESC, CursorPosition(None, uid(2)), ["Gamma", "delta", "Alpha"]),
        (TaskSort.DUE_AT_DESC, CursorPosition(None, uid(3)), ["beta", "Gamma", "delta", "Alpha"]),
        (TaskSort.DUE_AT_DESC, CursorPosition(T0 + timedelta(days=1), uid(4)), ["Alpha"]),
        (TaskSort.PRIORITY_DESC, CursorPosition(4, uid(2)), ["Alpha", "Gamma"]),
    ],
)
async def test_keyset_after(
    seeded: World, sort: TaskSort, after: CursorPosition, expected: list[str]
) -> None:
    assert await titles(seeded, TaskQuery(sort=sort, after=after)) == expected


# --- losing a race to a concurrent writer (a repository that reports a stale write) -------------


class RacingRepository(MemoryTaskRepository):
    """Reads find the task; every write reports that someone else changed it first."""

    @override
    async def update(self, task: Task, expected_version: int) -> bool:
        return False

    @override
    async def trash(self, task_id: str, expected_version: int, at: datetime) -> list[str]:
        return []


class RacingUnitOfWork:
    def __init__(self, task: Task) -> None:
        member = Membership(task.project_id, task.owner_id, Role.OWNER, T0)
        tables: dict[str, Any] = {
            "tasks": {task.id: task},
            "trash": {},
            "memberships": {f"{task.project_id}/{task.owner_id}": member},
            "comments": {},
            "projects": {},
        }
        self.tasks = RacingRepository(tables)
        self.project_tasks = MemoryProjectTasks(tables)
        self.committed = False

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None

    async def commit(self) -> None:
        self.committed = True

    async def rollback(self) -> None:
        return None


@pytest.mark.parametrize(("expected_version", "error"), [(None, Conflict), (1, PreconditionFailed)])
async def test_lost_race_is_reported(expected_version: int | None, error: type[Exception]) -> None:
    uow = RacingUnitOfWork(make_task(uid(1), owner_id=ALICE_ID))
    events = RecordingEventPublisher()
    changes: Mapping[str, object] = {"title": "new"}
    racing: Any = lambda: uow  # noqa: E731 (a stand-in with only what these use cases touch)
    with pytest.raises(error):
        await UpdateTask(racing, FakeClock(), events, ids=SequentialIds()).execute(
            ALICE, uid(1), changes, expected_version
        )
    with pytest.raises(error):
        await DeleteTask(racing, FakeClock(), events, ids=SequentialIds()).execute(
            ALICE, uid(1), expected_version
        )
    assert not uow.committed
    assert events.events == []
