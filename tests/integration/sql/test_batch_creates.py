"""An atomic batch's creates on the SQL store: a stretch of creates for one project is written
by one statement on PostgreSQL (with the owner's counter and the created events), all or none;
when that statement refuses (access, cap), the creates run one by one and the first that fails
is the batch's error, with nothing written. SQLite writes them one by one throughout."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.memory.events import RecordingEventPublisher
from adapters.security.ids import UuidV7Generator
from adapters.sql.tables import events
from domain.errors import Forbidden, LimitReached
from domain.projects import Membership, Project, Role
from domain.tasks import TaskDraft
from domain.use_cases.task_batch import (
    BatchFailed,
    CreateOp,
    Operation,
    Outcome,
    RunTaskBatch,
    UpdateOp,
)
from tests.integration.sql.conftest import (
    TaskUowFactory,
    UowFactory,
    add_user,
    inbox_id,
    new_id,
)
from tests.integration.sql.test_task_cap import counts
from tests.unit.projects.support import Who
from tests.unit.tasks.fakes import T0, FakeClock


def _batch(uow: TaskUowFactory, *, max_tasks: int = 1_000) -> RunTaskBatch:
    return RunTaskBatch(
        uow, FakeClock(), UuidV7Generator(), RecordingEventPublisher(), max_tasks=max_tasks
    )


async def _project(new_uow: UowFactory, owner_id: str, *members: tuple[str, Role]) -> str:
    project = Project(new_id(), "P", None, False, T0, T0, 1)
    async with new_uow() as uow:
        await uow.projects.add(project, inbox_of=None)
        await uow.memberships.add(Membership(project.id, owner_id, Role.OWNER, T0))
        for user_id, role in members:
            await uow.memberships.add(Membership(project.id, user_id, role, T0))
        await uow.commit()
    return project.id


async def _created_events(engine: AsyncEngine, task_ids: list[str]) -> list[tuple[str, str]]:
    """(resource id, body's data.project_id) of the created events of `task_ids`, in seq order."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(events.c.resource_id, events.c.body)
            .where(events.c.resource_id.in_(task_ids), events.c.type == "task.created")
            .order_by(events.c.seq)
        )
        return [(str(r), json.loads(b)["data"]["project_id"]) for r, b in rows]


async def test_creates_in_a_project_and_the_inbox_are_stored_with_their_events(
    engine: AsyncEngine, new_uow: UowFactory, tasks_uow: TaskUowFactory
) -> None:
    owner = await add_user(new_uow)
    project_id = await _project(new_uow, owner.id)
    old = (await _batch(tasks_uow).execute(Who(owner.id), [CreateOp(TaskDraft(title="old"))]))[0]
    assert old.task is not None
    operations: list[Operation] = [
        *(
            CreateOp(TaskDraft(title=f"p{n}", project_id=project_id, labels=["x"]))
            for n in range(3)
        ),
        UpdateOp(old.task.id, {"title": "older"}),
        *(CreateOp(TaskDraft(title=f"i{n}", description="d")) for n in range(4)),
    ]
    results = await _batch(tasks_uow).execute(Who(owner.id), operations)
    assert [r.outcome for r in results] == [Outcome.CREATED] * 3 + [Outcome.UPDATED] + [
        Outcome.CREATED
    ] * 4
    made = [r.task for r in results if r.outcome is Outcome.CREATED]
    assert all(task is not None for task in made)
    ids = [task.id for task in made if task is not None]
    where = [project_id] * 3 + [inbox_id(owner.id)] * 4
    assert [task.project_id for task in made if task is not None] == where
    async with tasks_uow() as uow:
        stored = [await uow.tasks.get(task_id, owner.id) for task_id in ids]
    assert [(s.task.title, s.task.project_id, s.task.labels) for s in stored if s] == [
        (f"p{n}", project_id, ("x",)) for n in range(3)
    ] + [(f"i{n}", inbox_id(owner.id), ()) for n in range(4)]
    # One created event per task, in the operations' order, in the project it went to.
    assert await _created_events(engine, ids) == list(zip(ids, where, strict=True))
    assert await counts(engine, owner.id) == (8, 8)


async def test_a_refused_stretch_fails_at_the_first_create_that_fails_and_writes_nothing(
    engine: AsyncEngine, new_uow: UowFactory, tasks_uow: TaskUowFactory
) -> None:
    owner, viewer = await add_user(new_uow), await add_user(new_uow)
    project_id = await _project(new_uow, owner.id, (viewer.id, Role.VIEWER))
    with pytest.raises(BatchFailed) as failed:
        await _batch(tasks_uow).execute(
            Who(viewer.id),
            [CreateOp(TaskDraft(title=f"t{n}", project_id=project_id)) for n in range(3)],
        )
    assert failed.value.index == 0
    assert isinstance(failed.value.error, Forbidden)
    # The cap: two places left, five creates: the third fails.
    await _batch(tasks_uow).execute(
        Who(owner.id), [CreateOp(TaskDraft(title=f"held{n}")) for n in range(3)]
    )
    with pytest.raises(BatchFailed) as capped:
        await _batch(tasks_uow, max_tasks=5).execute(
            Who(owner.id), [CreateOp(TaskDraft(title=f"t{n}")) for n in range(5)]
        )
    assert capped.value.index == 2
    assert isinstance(capped.value.error, LimitReached)
    assert await counts(engine, owner.id) == (3, 3)
    assert await counts(engine, viewer.id) == (None, 0)
