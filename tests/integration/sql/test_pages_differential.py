"""Generated list queries, walked page by page, against the in-memory twin (the oracle).

Each query draws a sort, a set of filters (status, priority, labels, a due window, q, project,
assignee, parent), sometimes a key restricted to projects, and a page size, then walks every page
with keyset cursors on the SQL repository and on the twin. The data is built for the edge cases:
sort keys tie often (few distinct times and priorities), a third of the tasks have no due date,
the texts hold case-folding pairs and LIKE wildcards, and the tasks spread over the reader's
inbox, a project they view, and one they cannot read. A wrong keyset predicate, order, filter or
access condition in any SQL path shows up as a page that differs.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from adapters.memory.tasks import MemoryTaskRepository
from domain.ports.tasks import Readable, TaskRepository
from domain.projects import Membership, Project, Role
from domain.task_queries import NONE, CursorPosition, TaskFilter, TaskQuery, TaskSort
from domain.tasks import Task, TaskStatus
from tests.integration.sql.conftest import (
    TaskUowFactory,
    UowFactory,
    add_user,
    inbox_id,
    memory_tables,
    new_id,
    reader,
)
from tests.integration.sql.test_tasks import T0, make_task

QUERIES = 120  # per database and mode
SEED = 20261203

TIMES = [T0 + timedelta(minutes=m) for m in range(5)]
DUE = [T0 + timedelta(days=d) for d in range(4)]
LABELS = ["work", "home", "urgent", "Work", "later"]
TEXTS = [
    ("Straße fegen", None),
    ("STRASSE kehren", "mit Besen"),
    ("Rabatt 100% prüfen", None),
    ("rename snake_case vars", "and camelCase"),
    ("ÉCOLE", "accents"),
    ("école", None),
    ("plain", "50% done_now"),
]
NEEDLES = ["strasse", "STRASSE", "%", "_", "école", "e", "done", "zzz", "ca"]


@dataclass(frozen=True)
class World:
    owner_id: str
    neighbour_id: str
    projects: tuple[str, ...]  # the owner's inbox, the shared project, the neighbour's inbox
    parents: tuple[str, ...]
    oracle: MemoryTaskRepository


def _tasks(
    owner_id: str, project_id: str, assignees: list[str | None], count: int, rng: random.Random
) -> list[Task]:
    made: list[Task] = []
    for index in range(count):
        title, description = TEXTS[index % len(TEXTS)]
        created = rng.choice(TIMES)
        status = rng.choice(list(TaskStatus))
        made.append(
            make_task(
                owner_id,
                id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                title=title,
                description=description,
                status=status,
                priority=rng.randint(1, 4),
                labels=tuple(rng.sample(LABELS, rng.randint(0, 3))),
                due_at=None if rng.random() < 0.33 else rng.choice(DUE),
                completed_at=created if status is TaskStatus.DONE else None,
                created_at=created,
                updated_at=rng.choice(TIMES[2:]),
                project_id=project_id,
                assignee_id=rng.choice(assignees),
                parent_id=rng.choice(made[:8]).id if index >= 8 and rng.random() < 0.4 else None,
            )
        )
    return made


@pytest.fixture(scope="module")
async def world(new_uow: UowFactory) -> World:
    owner, neighbour = await add_user(new_uow), await add_user(new_uow)
    shared = Project(new_id(), "Shared", None, False, T0, T0, 1)
    members = [
        Membership(shared.id, neighbour.id, Role.OWNER, T0),
        Membership(shared.id, owner.id, Role.VIEWER, T0),
    ]
    rng = random.Random(SEED)
    both: list[str | None] = [None, owner.id, neighbour.id]
    mine = _tasks(owner.id, inbox_id(owner.id), [None, owner.id], 60, rng)
    viewed = _tasks(neighbour.id, shared.id, both, 40, rng)
    theirs = _tasks(neighbour.id, inbox_id(neighbour.id), [None, neighbour.id], 20, rng)
    async with new_uow() as uow:
        await uow.projects.add(shared)
        for membership in members:
            await uow.memberships.add(membership)
        for task in [*mine, *viewed, *theirs]:
            await uow.tasks.add(task)
        await uow.commit()
    table: dict[str, Any] = {task.id: task for task in [*mine, *viewed, *theirs]}
    tables = memory_tables(table, owner.id, neighbour.id)
    tables["memberships"].update({f"{m.project_id}/{m.user_id}": m for m in members})
    projects = (inbox_id(owner.id), shared.id, inbox_id(neighbour.id))
    parents = tuple({t.parent_id for t in table.values() if t.parent_id is not None})
    return World(owner.id, neighbour.id, projects, parents, MemoryTaskRepository(tables))


def _random_query(rng: random.Random, world: World) -> tuple[TaskQuery, int, Readable]:
    """A query with a random sort and filters, a page size, and who reads."""
    wanted: dict[str, Any] = {}
    if rng.random() < 0.25:
        wanted["project_id"] = rng.choice(world.projects)
    if rng.random() < 0.25:
        wanted["assignee_id"] = rng.choice([world.owner_id, world.neighbour_id, NONE])
    if rng.random() < 0.2:
        wanted["parent_id"] = rng.choice([*world.parents[:3], NONE])
    if rng.random() < 0.25:
        wanted["status"] = rng.choice(list(TaskStatus))
    if rng.random() < 0.25:
        wanted["priority"] = rng.randint(1, 4)
    if rng.random() < 0.25:
        wanted["labels"] = tuple(rng.sample(LABELS, rng.randint(1, 2)))
    if rng.random() < 0.25:
        wanted["due_after"] = rng.choice(DUE) - timedelta(microseconds=rng.choice([0, 1]))
    if rng.random() < 0.25:
        wanted["due_before"] = rng.choice(DUE) + timedelta(microseconds=rng.choice([0, 1]))
    if rng.random() < 0.25:
        wanted["q"] = rng.choice(NEEDLES)
    query = TaskQuery(TaskFilter(**wanted), sort=rng.choice(list(TaskSort)))
    who = reader(world.owner_id)
    if rng.random() < 0.2:  # a key restricted to one of the projects
        who = Readable(who.user_id, who.roles, frozenset({rng.choice(world.projects[:2])}))
    return query, rng.choice([1, 2, 3, 5, 7, 11, 50]), who


async def _walk(repo: TaskRepository, owner_id: Readable, query: TaskQuery, size: int) -> list[Any]:
    """Every page, following each page's last task, until a short page."""
    pages: list[list[str]] = []
    position: CursorPosition | None = None
    while True:
        page = await repo.list_page(owner_id, query.at(position), limit=size)
        pages.append([task.id for task in page])
        if len(page) < size:
            return pages
        position = CursorPosition.of(page[-1], query.sort)


async def test_generated_queries_page_like_the_memory_twin(
    tasks_uow: TaskUowFactory, world: World
) -> None:
    rng = random.Random(SEED)
    nonempty = 0
    for number in range(QUERIES):
        query, size, who = _random_query(rng, world)
        expected = await _walk(world.oracle, who, query, size)
        async with tasks_uow() as uow:
            pages = await _walk(uow.tasks, who, query, size)
        assert pages == expected, f"query {number}: {query!r} by {who!r}, pages of {size}"
        nonempty += any(expected)
    assert nonempty > QUERIES // 2  # the generated filters mostly match something


@pytest.mark.parametrize("sort", list(TaskSort), ids=lambda s: s.value)
async def test_every_position_continues_like_the_memory_twin(
    tasks_uow: TaskUowFactory, world: World, sort: TaskSort
) -> None:
    """After every task of the full list (ties and NULL due dates included), the next page."""
    who = reader(world.owner_id)
    everything = await world.oracle.list_page(who, TaskQuery(sort=sort), limit=200)
    async with tasks_uow() as uow:
        for task in everything:
            query = TaskQuery(sort=sort, after=CursorPosition.of(task, sort))
            expected = await world.oracle.list_page(who, query, limit=3)
            assert await uow.tasks.list_page(who, query, limit=3) == expected
