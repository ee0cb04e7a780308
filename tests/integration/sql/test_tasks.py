"""SQL task repository on PostgreSQL and SQLite: CRUD with versions, owner scoping, and every
filter and sort with keyset paging, compared page by page with the in-memory twin."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.memory.tasks import MemoryTaskRepository
from adapters.sql.tables import users
from domain.ports.tasks import TaskRepository
from domain.task_queries import CursorPosition, TaskFilter, TaskQuery, TaskSort
from domain.tasks import Task, TaskStatus
from tests.integration.sql.conftest import (
    TaskUowFactory,
    UowFactory,
    add_user,
    inbox_id,
    memory_tables,
    new_id,
    reach,
    reader,
)

T0 = datetime(2026, 2, 3, 4, 5, 6, 789012, tzinfo=UTC)


def make_task(owner_id: str, **changes: object) -> Task:
    task = Task(
        id=new_id(),
        owner_id=owner_id,
        project_id=inbox_id(owner_id),
        title="Write the report",
        description=None,
        status=TaskStatus.TODO,
        priority=1,
        labels=(),
        due_at=None,
        completed_at=None,
        created_at=T0,
        updated_at=T0,
        version=1,
    )
    return replace(task, **changes)  # type: ignore[arg-type]


# --- single tasks --------------------------------------------------------------------------------


async def test_task_round_trips_every_field(new_uow: UowFactory, tasks_uow: TaskUowFactory) -> None:
    owner = await add_user(new_uow)
    task = make_task(
        owner.id,
        title="Größe prüfen 🚀",
        description="line one\nline two",
        status=TaskStatus.DONE,
        priority=4,
        labels=("zeta", "Alpha", "ünï"),
        due_at=T0 + timedelta(days=3, microseconds=1),
        completed_at=T0 + timedelta(seconds=1),
        updated_at=T0 + timedelta(seconds=1),
        version=3,
    )
    async with tasks_uow() as uow:
        await uow.tasks.add(task)
        await uow.commit()
    async with tasks_uow() as uow:
        stored = await reach(uow, owner.id, task.id)
    assert stored == task
    assert stored is not None
    assert stored.labels == ("zeta", "Alpha", "ünï")  # order kept, a tuple
    assert stored.due_at is not None
    assert stored.due_at.utcoffset() == timedelta(0)


async def test_get_is_scoped_to_the_owner(new_uow: UowFactory, tasks_uow: TaskUowFactory) -> None:
    owner, stranger = await add_user(new_uow), await add_user(new_uow)
    task = make_task(owner.id)
    async with tasks_uow() as uow:
        await uow.tasks.add(task)
        await uow.commit()
    async with tasks_uow() as uow:
        assert await reach(uow, stranger.id, task.id) is None
        assert await reach(uow, owner.id, new_id()) is None
        assert await reach(uow, owner.id, "not-a-uuid") is None
        assert await reach(uow, owner.id, task.id.upper()) is None


async def test_update_writes_only_on_the_expected_version(
    new_uow: UowFactory, tasks_uow: TaskUowFactory
) -> None:
    owner = await add_user(new_uow)
    task = make_task(owner.id, description="old")
    async with tasks_uow() as uow:
        await uow.tasks.add(task)
        await uow.commit()
    changed = replace(
        task,
        title="New title Straße",
        description=None,
        status=TaskStatus.IN_PROGRESS,
        priority=3,
        labels=("b", "a"),
        due_at=T0 + timedelta(hours=5),
        updated_at=T0 + timedelta(minutes=1),
        version=2,
    )
    async with tasks_uow() as uow:
        assert await uow.tasks.update(changed, expected_version=2) is False
        assert await uow.tasks.update(changed, expected_version=1) is True
        assert await uow.tasks.update(replace(changed, version=3), expected_version=1) is False
        await uow.commit()
    async with tasks_uow() as uow:
        assert await reach(uow, owner.id, task.id) == changed
        # The search columns follow the update.
        found = await uow.tasks.list_page(
            reader(owner.id), TaskQuery(TaskFilter(q="STRASSE")), limit=5
        )
        assert found == [changed]
        old = await uow.tasks.list_page(reader(owner.id), TaskQuery(TaskFilter(q="old")), limit=5)
        assert old == []


async def test_update_of_a_missing_task_is_false(
    new_uow: UowFactory, tasks_uow: TaskUowFactory
) -> None:
    owner = await add_user(new_uow)
    async with tasks_uow() as uow:
        assert await uow.tasks.update(make_task(owner.id), expected_version=1) is False


async def test_delete_needs_the_owner_and_the_expected_version(
    new_uow: UowFactory, tasks_uow: TaskUowFactory
) -> None:
    owner, stranger = await add_user(new_uow), await add_user(new_uow)
    task = make_task(owner.id, version=4)
    async with tasks_uow() as uow:
        await uow.tasks.add(task)
        await uow.commit()
    async with tasks_uow() as uow:
        assert await uow.tasks.delete(owner.id, task.id, expected_version=3) is False
        assert await uow.tasks.delete(stranger.id, task.id, expected_version=4) is False
        assert await uow.tasks.delete(owner.id, "not-a-uuid", expected_version=4) is False
        assert await reach(uow, owner.id, task.id) == task
        assert await uow.tasks.delete(owner.id, task.id, expected_version=4) is True
        assert await uow.tasks.delete(owner.id, task.id, expected_version=4) is False
        await uow.commit()
    async with tasks_uow() as uow:
        assert await reach(uow, owner.id, task.id) is None


async def test_deleting_the_owner_deletes_their_tasks(
    new_uow: UowFactory, tasks_uow: TaskUowFactory, engine: AsyncEngine
) -> None:
    # The foreign key cascades; SQLite needs PRAGMA foreign_keys=ON (the engine sets it).
    owner = await add_user(new_uow)
    task = make_task(owner.id)
    async with tasks_uow() as uow:
        await uow.tasks.add(task)
        await uow.commit()
    async with engine.begin() as conn:
        await conn.execute(delete(users).where(users.c.id == owner.id))
    async with tasks_uow() as uow:
        assert await reach(uow, owner.id, task.id) is None


# --- lists: the same data in SQL and in memory ---------------------------------------------------

TEXTS = [
    ("Straße fegen", None),
    ("STRASSE kehren", "mit Besen"),
    ("Rabatt 100% prüfen", None),
    ("rename snake_case vars", "and camelCase"),
    ("escape back\\slash", None),
    ("plain title", "mentions STRASSE in the description"),
    ("Percentage", "no percent sign here"),
    ("underscore-free", "a_b in description"),
    ("ÉCOLE", "accents"),
    ("école", None),
]
LABEL_POOL = ["work", "home", "urgent", "Work", "later"]


@dataclass(frozen=True)
class Dataset:
    owner_id: str
    tasks: list[Task]
    memory: MemoryTaskRepository


def _random_tasks(owner_id: str, count: int, rng: random.Random) -> list[Task]:
    # Few distinct times, so sort keys tie often and the id tie-breaker is exercised.
    times = [T0 + timedelta(minutes=m, microseconds=rng.randrange(2)) for m in range(6)]
    tasks = []
    for index in range(count):
        title, description = TEXTS[index % len(TEXTS)]
        created = rng.choice(times)
        status = rng.choice(list(TaskStatus))
        tasks.append(
            make_task(
                owner_id,
                id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                title=title,
                description=description,
                status=status,
                priority=rng.randint(1, 4),
                labels=tuple(rng.sample(LABEL_POOL, rng.randint(0, 3))),
                due_at=None if rng.random() < 0.3 else rng.choice(times) + timedelta(days=1),
                completed_at=created if status is TaskStatus.DONE else None,
                created_at=created,
                updated_at=created + timedelta(seconds=rng.randrange(4)),
                version=rng.randint(1, 3),
            )
        )
    return tasks


@pytest.fixture(scope="module")
async def dataset(new_uow: UowFactory) -> Dataset:
    owner, other = await add_user(new_uow), await add_user(new_uow)
    rng = random.Random(20261122)
    mine = _random_tasks(owner.id, 45, rng)
    theirs = _random_tasks(other.id, 10, rng)
    async with new_uow() as uow:
        for task in [*mine, *theirs]:
            await uow.tasks.add(task)
        await uow.commit()
    table: dict[str, Any] = {task.id: task for task in [*mine, *theirs]}
    return Dataset(owner.id, mine, MemoryTaskRepository(memory_tables(table, owner.id, other.id)))


async def _walk(
    repo: TaskRepository, owner_id: str, query: TaskQuery, page_size: int
) -> list[list[Task]]:
    pages: list[list[Task]] = []
    position: CursorPosition | None = None
    while True:
        page = await repo.list_page(reader(owner_id), query.at(position), limit=page_size)
        if page:
            pages.append(page)
        if len(page) < page_size:
            return pages
        position = CursorPosition.of(page[-1], query.sort)


FILTERS = {
    "none": TaskFilter(),
    "status": TaskFilter(status=TaskStatus.IN_PROGRESS),
    "priority": TaskFilter(priority=2),
    "one label": TaskFilter(labels=("work",)),
    "all labels": TaskFilter(labels=("work", "urgent")),
    "due window": TaskFilter(
        due_after=T0 + timedelta(days=1, minutes=1), due_before=T0 + timedelta(days=1, minutes=4)
    ),
    "due before": TaskFilter(due_before=T0 + timedelta(days=1, minutes=2)),
    "q folded": TaskFilter(q="strasse"),
    "combined": TaskFilter(labels=("home",), q="E", priority=3),
}


@pytest.mark.parametrize("sort", list(TaskSort), ids=lambda s: s.value)
@pytest.mark.parametrize("name", list(FILTERS))
async def test_pages_match_the_memory_twin(
    tasks_uow: TaskUowFactory, dataset: Dataset, sort: TaskSort, name: str
) -> None:
    query = TaskQuery(FILTERS[name], sort=sort)
    expected = await _walk(dataset.memory, dataset.owner_id, query, 4)
    async with tasks_uow() as uow:
        pages = await _walk(uow.tasks, dataset.owner_id, query, 4)
        everything = await uow.tasks.list_page(reader(dataset.owner_id), query, limit=200)
    assert pages == expected
    walked = [task.id for page in pages for task in page]
    assert len(walked) == len(set(walked))  # each task exactly once
    assert walked == [task.id for task in everything]  # paging changes nothing but the cut


@pytest.mark.parametrize("sort", list(TaskSort), ids=lambda s: s.value)
async def test_every_sort_walks_every_task_once_one_by_one(
    tasks_uow: TaskUowFactory, dataset: Dataset, sort: TaskSort
) -> None:
    query = TaskQuery(sort=sort)
    async with tasks_uow() as uow:
        pages = await _walk(uow.tasks, dataset.owner_id, query, 1)
    walked = [page[0].id for page in pages]
    assert sorted(walked) == sorted(task.id for task in dataset.tasks)
    assert pages == await _walk(dataset.memory, dataset.owner_id, query, 1)


async def test_nulls_count_as_infinity_in_due_order(
    tasks_uow: TaskUowFactory, dataset: Dataset
) -> None:
    async with tasks_uow() as uow:
        ascending = await uow.tasks.list_page(
            reader(dataset.owner_id), TaskQuery(sort=TaskSort.DUE_AT), limit=200
        )
        descending = await uow.tasks.list_page(
            reader(dataset.owner_id), TaskQuery(sort=TaskSort.DUE_AT_DESC), limit=200
        )
    undated = sum(task.due_at is None for task in dataset.tasks)
    assert 0 < undated < len(dataset.tasks)
    assert all(task.due_at is None for task in ascending[-undated:])
    assert all(task.due_at is None for task in descending[:undated])
    assert descending == ascending[::-1]


@pytest.mark.parametrize(
    ("needle", "titles"),
    [
        ("STRASSE", {"Straße fegen", "STRASSE kehren", "plain title"}),
        ("straße", {"Straße fegen", "STRASSE kehren", "plain title"}),
        ("%", {"Rabatt 100% prüfen"}),
        ("_", {"rename snake_case vars", "underscore-free"}),
        ("\\", {"escape back\\slash"}),
        ("école", {"ÉCOLE", "école"}),
        ("/", set()),
    ],
)
async def test_q_is_unicode_case_insensitive_and_wildcards_are_literal(
    tasks_uow: TaskUowFactory, dataset: Dataset, needle: str, titles: set[str]
) -> None:
    query = TaskQuery(TaskFilter(q=needle))
    async with tasks_uow() as uow:
        found = await uow.tasks.list_page(reader(dataset.owner_id), query, limit=200)
    assert {task.title for task in found} == titles
    assert found == await dataset.memory.list_page(reader(dataset.owner_id), query, limit=200)


async def test_label_filter_needs_every_label_exactly(
    tasks_uow: TaskUowFactory, dataset: Dataset
) -> None:
    wanted = ("work", "home")
    query = TaskQuery(TaskFilter(labels=wanted))
    async with tasks_uow() as uow:
        found = await uow.tasks.list_page(reader(dataset.owner_id), query, limit=200)
    expected = {t.id for t in dataset.tasks if {"work", "home"} <= set(t.labels)}
    assert expected  # the data holds some
    assert {task.id for task in found} == expected
    assert all("Work" not in task.labels or "work" in task.labels for task in found)


async def test_lists_never_show_another_owners_tasks(
    new_uow: UowFactory, tasks_uow: TaskUowFactory, dataset: Dataset
) -> None:
    stranger = await add_user(new_uow)
    async with tasks_uow() as uow:
        mine = await uow.tasks.list_page(reader(dataset.owner_id), TaskQuery(), limit=200)
        theirs = await uow.tasks.list_page(reader(stranger.id), TaskQuery(), limit=200)
    assert {task.id for task in mine} == {task.id for task in dataset.tasks}
    assert theirs == []


async def test_keyset_is_stable_when_tasks_are_inserted_between_pages(
    new_uow: UowFactory,
    tasks_uow: TaskUowFactory,
) -> None:
    owner = await add_user(new_uow)
    first = [make_task(owner.id, created_at=T0 + timedelta(seconds=i)) for i in range(6)]
    async with tasks_uow() as uow:
        for task in first:
            await uow.tasks.add(task)
        await uow.commit()
    query = TaskQuery()  # -created_at
    async with tasks_uow() as uow:
        page1 = await uow.tasks.list_page(reader(owner.id), query, limit=3)
        await uow.tasks.add(make_task(owner.id, created_at=T0 + timedelta(hours=1)))
        await uow.tasks.add(make_task(owner.id, created_at=T0 - timedelta(hours=1)))
        position = CursorPosition.of(page1[-1], query.sort)
        page2 = await uow.tasks.list_page(reader(owner.id), query.at(position), limit=10)
    newest_first = sorted(first, key=lambda t: (t.created_at, t.id), reverse=True)
    assert page1 == newest_first[:3]
    assert page2[:3] == newest_first[3:]
    assert len(page2) == 4  # plus the older one inserted behind the cursor


async def test_odd_labels_and_offset_times_survive_and_filter(
    new_uow: UowFactory, tasks_uow: TaskUowFactory
) -> None:
    owner = await add_user(new_uow)
    odd = 'with "quote", comma [x]'
    ist = timezone(timedelta(hours=5, minutes=30))
    local_due = datetime(2026, 6, 1, 12, 0, 0, 500, tzinfo=ist)  # 06:30:00.000500 UTC
    early = make_task(owner.id, labels=(odd, "%"), due_at=local_due)
    late = make_task(owner.id, labels=(odd,), due_at=datetime(2026, 6, 1, 7, 0, tzinfo=UTC))
    async with tasks_uow() as uow:
        await uow.tasks.add(late)
        await uow.tasks.add(early)
        await uow.commit()
    async with tasks_uow() as uow:
        stored = await reach(uow, owner.id, early.id)
        by_label = await uow.tasks.list_page(
            reader(owner.id), TaskQuery(TaskFilter(labels=(odd,))), limit=9
        )
        by_due = await uow.tasks.list_page(
            reader(owner.id), TaskQuery(sort=TaskSort.DUE_AT), limit=9
        )
        window = TaskFilter(due_before=datetime(2026, 6, 1, 6, 30, 0, 501, tzinfo=UTC))
        before = await uow.tasks.list_page(reader(owner.id), TaskQuery(window), limit=9)
    assert stored == early
    assert stored is not None
    assert stored.due_at == datetime(2026, 6, 1, 6, 30, 0, 500, tzinfo=UTC)
    assert {task.id for task in by_label} == {early.id, late.id}
    assert [task.id for task in by_due] == [early.id, late.id]
    assert [task.id for task in before] == [early.id]
