"""The per-owner task cap as every task store keeps it (`TaskRepository.add` and `delete`).

One contract, run on the in-memory twin by the unit tests and on every SQL mode (SQLAlchemy and
raw, PostgreSQL and SQLite) by the integration tests, so the twins cannot drift apart: the cap
refuses the task that would pass it and writes nothing, it counts per owner, it follows the
limit given on each call, a trashed task keeps its place, and only a committed delete for good
(from the trash, or by its purge) frees room.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from domain.ports.tasks import TaskUnitOfWork
from domain.tasks import Task, TaskLimitReached
from tests.unit.tasks.fakes import make_task

type NewUow = Callable[[], TaskUnitOfWork]
TRASHED_AT = datetime(2026, 1, 2, tzinfo=UTC)


def _fresh(owner_id: str, project_id: str) -> Task:
    return make_task(str(uuid.uuid4()), owner_id=owner_id, project_id=project_id)


async def add(new_uow: NewUow, task: Task, limit: int) -> bool:
    """Add and commit `task` in a unit of its own: True when stored, False when the cap refused
    it (a store may refuse at `add` or, holding the insert, at `commit`)."""
    refusal: TaskLimitReached | None = None
    try:
        async with new_uow() as uow:
            await uow.tasks.add(task, limit=limit)
            await uow.commit()
    except TaskLimitReached as refused:
        refusal = refused
    if refusal is None:
        return True
    assert refusal.limit == limit
    assert f"{limit} tasks" in refusal.detail
    return False


async def held(new_uow: NewUow, owner_id: str, tried: list[Task]) -> set[str]:
    """The ids of the owner's stored tasks among those `tried`."""
    found: set[str] = set()
    async with new_uow() as uow:
        for task in tried:
            stored = await uow.tasks.get(task.id, owner_id)
            if stored is not None and stored.task.owner_id == owner_id:
                found.add(task.id)
    return found


async def trash(new_uow: NewUow, task: Task, version: int) -> bool:
    """Move the task to the trash (its version goes up by one)."""
    async with new_uow() as uow:
        trashed = await uow.tasks.trash(task.id, version, TRASHED_AT)
        await uow.commit()
    return bool(trashed)


async def delete(new_uow: NewUow, task: Task, version: int, *, commit: bool = True) -> bool:
    """Delete the trashed task for good."""
    async with new_uow() as uow:
        deleted = await uow.tasks.delete(task.owner_id, task.id, version)
        if commit:
            await uow.commit()
    return deleted


async def purge_all(new_uow: NewUow, before: datetime) -> None:
    """Purge, a batch at a time, until nothing trashed before `before` is left."""
    for _ in range(1000):
        async with new_uow() as uow:
            went = await uow.tasks.purge_trash(before, 100)
            await uow.commit()
        if not went:
            return
    raise AssertionError("the purge never ended")


async def check_the_cap(
    new_uow: NewUow, owner: str, neighbour: str, projects: dict[str, str] | None = None
) -> None:
    """Walk one owner (with no tasks yet) to the cap and back; `neighbour` has none either.
    `projects` names each user's project for their tasks (stores that check it)."""
    tried: list[Task] = []

    def fresh_task(user: str) -> Task:
        task = _fresh(user, (projects or {}).get(user, "project-1"))
        tried.append(task)
        return task

    first = [fresh_task(owner) for _ in range(3)]
    for task in first:
        assert await add(new_uow, task, 3)

    # At the cap: refused, and nothing of it was written.
    refused = fresh_task(owner)
    assert not await add(new_uow, refused, 3)
    assert await held(new_uow, owner, tried) == {task.id for task in first}

    # The cap counts per owner.
    theirs = fresh_task(neighbour)
    assert await add(new_uow, theirs, 3)
    assert await held(new_uow, neighbour, tried) == {theirs.id}

    # The limit is the one given with each add: a lower one refuses, a higher one admits.
    assert not await add(new_uow, fresh_task(owner), 1)
    fourth = fresh_task(owner)
    assert await add(new_uow, fourth, 4)
    assert not await add(new_uow, fresh_task(owner), 4)

    # A trashed task keeps its place; a delete that misses (stale version), or one left
    # uncommitted, frees nothing.
    assert await trash(new_uow, first[0], version=1)
    assert not await add(new_uow, fresh_task(owner), 4)
    assert not await delete(new_uow, first[0], version=7)
    assert await delete(new_uow, first[0], version=2, commit=False)
    assert not await add(new_uow, fresh_task(owner), 4)

    # A committed delete frees one place, and only one.
    assert await delete(new_uow, first[0], version=2)
    fifth = fresh_task(owner)
    assert await add(new_uow, fifth, 4)
    assert not await add(new_uow, fresh_task(owner), 4)

    # The purge of the trash frees the places of what it deletes.
    # (The purge takes every store's expired trash: other tests' too, on a shared database.)
    assert await trash(new_uow, fifth, version=1)
    await purge_all(new_uow, TRASHED_AT)  # not older than that: it stays
    assert not await add(new_uow, fresh_task(owner), 4)
    await purge_all(new_uow, datetime(2100, 1, 1, tzinfo=UTC))
    fifth = fresh_task(owner)
    assert await add(new_uow, fifth, 4)

    # An add left uncommitted takes no place.
    assert await trash(new_uow, first[1], version=1)
    assert await delete(new_uow, first[1], version=2)
    async with new_uow() as uow:
        await uow.tasks.add(fresh_task(owner), limit=4)
    last = fresh_task(owner)
    assert await add(new_uow, last, 4)
    assert await held(new_uow, owner, tried) == {first[2].id, fourth.id, fifth.id, last.id}
    assert await held(new_uow, neighbour, tried) == {theirs.id}


def fresh_task(owner_id: str, project_id: str = "project-1") -> Task:
    return _fresh(owner_id, project_id)
