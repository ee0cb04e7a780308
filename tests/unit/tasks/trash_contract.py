"""The trash as every task store keeps it (`TaskRepository.trash`, `get_trashed`, `restore`,
`list_trash`, `purge_trash`, and the task facts that skip trashed tasks).

One contract, run on the in-memory twin by the unit tests and on every SQL mode by the
integration tests, so the twins cannot drift apart.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from domain.access import POLICY, Action
from domain.ports.tasks import Readable, TaskUnitOfWork
from domain.task_queries import TaskFilter, TaskQuery
from domain.tasks import Task, TaskLimitReached
from domain.trash import TrashPosition
from tests.unit.tasks.cap_contract import purge_all
from tests.unit.tasks.fakes import make_task

type NewUow = Callable[[], TaskUnitOfWork]

T1 = datetime(2026, 2, 1, tzinfo=UTC)
T2, T3, T4 = T1 + timedelta(hours=1), T1 + timedelta(hours=2), T1 + timedelta(hours=3)
FAR = datetime(2100, 1, 1, tzinfo=UTC)


async def _add(new_uow: NewUow, *tasks: Task) -> None:
    for task in tasks:
        async with new_uow() as uow:
            await uow.tasks.add(task, limit=1000)
            await uow.commit()


async def _live(new_uow: NewUow, owner_id: str, project_id: str) -> set[str]:
    readable = Readable(owner_id, POLICY.roles_allowing(Action.READ_TASKS))
    query = TaskQuery(filter=TaskFilter(project_id=project_id))
    async with new_uow() as uow:
        return {t.id for t in await uow.tasks.list_page(readable, query, limit=100)}


async def _trash(
    new_uow: NewUow, owner_id: str, project_id: str, *, limit: int = 100, after: Any = None
) -> list[tuple[str, datetime, str, int]]:
    readable = Readable(owner_id, POLICY.roles_allowing(Action.READ_TASKS))
    async with new_uow() as uow:
        found = await uow.tasks.list_trash(readable, project_id, after, limit=limit)
    return [(t.task.id, t.deleted_at, t.trashed_with, t.task.version) for t in found]


async def check_the_trash(new_uow: NewUow, owner_id: str, project_id: str) -> None:
    """`owner_id` owns `project_id`, which holds no tasks yet."""

    def fresh(parent: Task | None = None) -> Task:
        return make_task(
            str(uuid.uuid4()),
            owner_id=owner_id,
            project_id=project_id,
            parent_id=None if parent is None else parent.id,
        )

    root = fresh()
    child = fresh(root)
    grandchild = fresh(child)
    early = fresh(root)
    other = fresh()
    await _add(new_uow, root, child, grandchild, early, other)

    # A subtask trashed on its own first; then its ancestor with what is still live under it.
    async with new_uow() as uow:
        assert await uow.tasks.trash(early.id, 1, T1) == [early.id]
        assert not await uow.tasks.trash(root.id, 7, T2)  # stale version: nothing moves
        # What moved: the root and what was still live under it (one event each, later).
        moved = await uow.tasks.trash(root.id, 1, T2)
        assert sorted(moved) == sorted([root.id, child.id, grandchild.id])
        assert not await uow.tasks.trash(root.id, 2, T2)  # already in the trash
        await uow.commit()
    async with new_uow() as uow:
        for gone in (root, child, grandchild, early):
            assert await uow.tasks.get(gone.id, owner_id) is None
            assert await uow.project_tasks.node(gone.id) is None
        assert await uow.tasks.get(other.id, owner_id) is not None
        # Trashed subtasks stay in the subtree (a move carries them, the depth rule counts them).
        below = {t.id for t in await uow.project_tasks.subtree_tasks(root.id)}
        assert below == {child.id, grandchild.id, early.id}
        found = await uow.tasks.get_trashed(child.id, owner_id)
        assert found is not None
        assert found.membership is not None
        assert (found.trashed.deleted_at, found.trashed.trashed_with) == (T2, root.id)
        assert await uow.tasks.get_trashed(other.id, owner_id) is None
    assert await _live(new_uow, owner_id, project_id) == {other.id}

    # Newest first, then id descending; every trashed task got a new version.
    same_time = sorted((root.id, child.id, grandchild.id), reverse=True)
    expected = [(i, T2, root.id, 2) for i in same_time] + [(early.id, T1, early.id, 2)]
    assert await _trash(new_uow, owner_id, project_id) == expected
    first = await _trash(new_uow, owner_id, project_id, limit=2)
    assert first == expected[:2]
    after = TrashPosition(first[-1][1], first[-1][0])
    assert await _trash(new_uow, owner_id, project_id, after=after) == expected[2:]
    assert await _trash(new_uow, owner_id, str(uuid.uuid4())) == []

    # A restore brings back exactly what was trashed with the task, each with a new version.
    async with new_uow() as uow:
        assert await uow.tasks.restore(root.id, 1, T3) == []  # stale version
        restored = await uow.tasks.restore(root.id, 2, T3)
        await uow.commit()
    assert next(t.id for t in restored) == root.id
    assert {t.id for t in restored} == {root.id, child.id, grandchild.id}
    assert {(t.version, t.updated_at) for t in restored} == {(3, T3)}
    assert await _live(new_uow, owner_id, project_id) == {
        other.id,
        root.id,
        child.id,
        grandchild.id,
    }
    assert [row[0] for row in await _trash(new_uow, owner_id, project_id)] == [early.id]

    # The purge: only what is older than the cut-off; a tree leaves first (the order is the
    # twin's unit test's; on a shared database other tests' expired trash goes too).
    async with new_uow() as uow:
        assert await uow.tasks.trash(root.id, 3, T4)
        await uow.commit()
    await purge_all(new_uow, T1)
    assert len(await _trash(new_uow, owner_id, project_id)) == 4
    await purge_all(new_uow, T2)
    assert [row[0] for row in await _trash(new_uow, owner_id, project_id)] == same_time
    await purge_all(new_uow, FAR)
    assert await _trash(new_uow, owner_id, project_id) == []
    assert await _live(new_uow, owner_id, project_id) == {other.id}

    # Every purged task freed its place: the owner holds exactly one task again.
    await _add_under(new_uow, fresh(), 2)
    try:
        await _add_under(new_uow, fresh(), 2)
    except TaskLimitReached:
        pass
    else:
        raise AssertionError("the cap let a third task in")


async def _add_under(new_uow: NewUow, task: Task, limit: int) -> None:
    async with new_uow() as uow:
        await uow.tasks.add(task, limit=limit)
        await uow.commit()
