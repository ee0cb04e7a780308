"""RunTaskBatch over the in-memory unit of work: the single use cases in one transaction (atomic)
or each on its own, events only for what was committed, one unit of work for an atomic batch."""

from __future__ import annotations

import pytest

from adapters.memory.projects import MemoryProjectUnitOfWork
from domain.errors import Forbidden, Invalid, LimitReached, NotFound, PreconditionFailed
from domain.events import TaskEventName
from domain.ports.tasks import TaskUnitOfWork
from domain.tasks import TaskDraft
from domain.use_cases.task_batch import (
    BatchFailed,
    CreateOp,
    DeleteOp,
    Operation,
    Outcome,
    Rejected,
    RunTaskBatch,
    UpdateOp,
    batch_steps,
)
from tests.unit.projects.support import Who
from tests.unit.tasks.test_use_cases import ALICE, ALICE_ID, World


@pytest.fixture
def world() -> World:
    return World()


def run_batch(world: World, max_tasks: int = 100) -> RunTaskBatch:
    return RunTaskBatch(world.uow, world.clock, world.ids, world.events, max_tasks=max_tasks)


async def test_an_atomic_batch_commits_everything_and_then_announces_it(world: World) -> None:
    old = await world.create.execute(ALICE, TaskDraft(title="old"))
    published = len(world.events.events)
    results = await run_batch(world).execute(
        ALICE,
        [
            CreateOp(TaskDraft(title="new")),
            UpdateOp(old.id, {"title": "renamed"}, expected_version=1),
            DeleteOp(old.id, expected_version=2),
        ],
    )
    assert [r.outcome for r in results] == [Outcome.CREATED, Outcome.UPDATED, Outcome.DELETED]
    assert [r.index for r in results] == [0, 1, 2]
    assert results[1].task is not None
    assert results[1].task.version == 2
    trash = world.database.tables["trash"]
    assert [t.title for t in world.stored().values() if t.id not in trash] == ["new"]
    assert list(trash) == [old.id]  # a delete in a batch goes to the trash, as a single one
    names = [e.name for e in world.events.events[published:]]
    assert names == [TaskEventName.CREATED, TaskEventName.UPDATED, TaskEventName.DELETED]


async def test_an_atomic_batch_that_fails_changes_and_announces_nothing(world: World) -> None:
    old = await world.create.execute(ALICE, TaskDraft(title="old"))
    before, published = dict(world.stored()), len(world.events.events)
    with pytest.raises(BatchFailed) as failed:
        await run_batch(world).execute(
            ALICE,
            [
                CreateOp(TaskDraft(title="new")),
                UpdateOp(old.id, {"title": "renamed"}),
                DeleteOp(old.id, expected_version=1),  # the update moved it to version 2
            ],
        )
    assert failed.value.index == 2
    assert isinstance(failed.value.error, PreconditionFailed)
    assert world.stored() == before
    assert len(world.events.events) == published


async def test_an_atomic_batch_uses_one_unit_of_work(world: World) -> None:
    opened: list[TaskUnitOfWork] = []

    def counting() -> TaskUnitOfWork:
        uow = MemoryProjectUnitOfWork(world.database)
        opened.append(uow)
        return uow

    batch = RunTaskBatch(counting, world.clock, world.ids, world.events)
    await batch.execute(ALICE, [CreateOp(TaskDraft(title=f"t{n}")) for n in range(5)])
    assert len(opened) == 1
    # Not atomic: creates that all succeed are one write, anything else one unit each.
    await batch.execute(ALICE, [CreateOp(TaskDraft(title=f"u{n}")) for n in range(5)], atomic=False)
    assert len(opened) == 2
    mixed: list[Operation] = [CreateOp(TaskDraft(title="v")), Rejected(Invalid("bad"))]
    await batch.execute(ALICE, [*mixed, CreateOp(TaskDraft(title="w"))], atomic=False)
    assert len(opened) == 4  # the rejected one opens nothing


async def test_not_atomic_each_operation_has_its_own_result(world: World) -> None:
    rejected = Invalid.of("operations[1].data.priority", "Expected `int`")
    results = await run_batch(world, max_tasks=2).execute(
        ALICE,
        [
            CreateOp(TaskDraft(title="one")),
            Rejected(rejected),
            UpdateOp("no-such-task", {"title": "x"}),
            CreateOp(TaskDraft(title="two")),
            CreateOp(TaskDraft(title="three")),
        ],
        atomic=False,
    )
    outcomes = [(r.outcome, type(r.error).__name__ if r.error else None) for r in results]
    assert outcomes == [
        (Outcome.CREATED, None),
        (Outcome.FAILED, "Invalid"),
        (Outcome.FAILED, "NotFound"),
        (Outcome.CREATED, None),
        (Outcome.FAILED, "TaskLimitReached"),
    ]
    assert results[1].error is rejected
    assert isinstance(results[4].error, LimitReached)
    assert sorted(t.title for t in world.stored().values()) == ["one", "two"]


async def test_the_cap_counts_the_batchs_own_creates(world: World) -> None:
    await world.create.execute(ALICE, TaskDraft(title="held"))
    with pytest.raises(BatchFailed) as failed:
        await run_batch(world, max_tasks=3).execute(
            ALICE, [CreateOp(TaskDraft(title=f"t{n}")) for n in range(3)]
        )
    assert failed.value.index == 2
    assert isinstance(failed.value.error, LimitReached)
    assert len(world.stored()) == 1


async def test_the_access_policy_is_the_single_use_cases(world: World) -> None:
    theirs = await world.create.execute(Who("user-bob"), TaskDraft(title="bob's"))
    with pytest.raises(BatchFailed) as failed:
        await run_batch(world).execute(ALICE, [DeleteOp(theirs.id)])
    assert isinstance(failed.value.error, NotFound)
    reader = Who(ALICE_ID, scopes=frozenset({"tasks:read"}))
    with pytest.raises(Forbidden):
        await run_batch(world).execute(reader, [CreateOp(TaskDraft(title="x"))])


async def test_a_batch_has_one_to_a_hundred_operations(world: World) -> None:
    with pytest.raises(ValueError, match="1 to 100"):
        await run_batch(world).execute(ALICE, [])
    with pytest.raises(ValueError, match="1 to 100"):
        await run_batch(world).execute(ALICE, [CreateOp(TaskDraft(title="t"))] * 101)


def test_creates_for_one_project_share_a_step_and_the_rest_run_alone() -> None:
    def create(project: str | None = None, **more: object) -> CreateOp:
        return CreateOp(TaskDraft(title="t", project_id=project, **more))  # type: ignore[arg-type]

    operations: list[Operation] = [
        create("p1"),
        create("p1"),
        UpdateOp("x", {}),
        create(),  # the inbox, alone: the next names another project
        create("p2"),
        create("p2"),
        create("p2", parent_id="x"),  # the tree's checks read first: alone
        create("p2"),
        Rejected(Invalid("bad")),
        create(),
        create(),
    ]
    steps = [(start, len(drafts)) for start, drafts in batch_steps(operations)]
    assert steps == [(0, 2), (2, 0), (3, 0), (4, 2), (6, 0), (7, 0), (8, 0), (9, 2)]


async def test_a_refused_step_runs_its_creates_one_by_one_and_names_the_first_failure(
    world: World,
) -> None:
    with pytest.raises(BatchFailed) as failed:
        await run_batch(world).execute(
            ALICE,
            [
                CreateOp(TaskDraft(title="fine")),
                CreateOp(TaskDraft(title="fine too")),
                CreateOp(TaskDraft(title="   ")),  # an empty title
                CreateOp(TaskDraft(title="never reached", priority=9)),
            ],
        )
    assert failed.value.index == 2
    assert isinstance(failed.value.error, Invalid)
    assert world.stored() == {}
    results = await run_batch(world).execute(
        ALICE, [CreateOp(TaskDraft(title=f"t{n}")) for n in range(5)]
    )
    assert [r.task.title for r in results if r.task] == [f"t{n}" for n in range(5)]
    assert len(world.stored()) == 5
    assert [e.task_id for e in world.events.events] == [r.task.id for r in results if r.task]


async def test_not_atomic_a_stretch_the_cap_refuses_still_creates_what_fits(world: World) -> None:
    await world.create.execute(ALICE, TaskDraft(title="held"))
    results = await run_batch(world, max_tasks=3).execute(
        ALICE, [CreateOp(TaskDraft(title=f"t{n}")) for n in range(3)], atomic=False
    )
    assert [r.outcome for r in results] == [Outcome.CREATED, Outcome.CREATED, Outcome.FAILED]
    assert isinstance(results[2].error, LimitReached)
    assert len(world.stored()) == 3
