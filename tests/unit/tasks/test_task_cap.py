"""The per-owner task cap on the in-memory twin and in the create use case."""

from __future__ import annotations

import pytest

from adapters.memory.projects import MemoryProjectUnitOfWork
from adapters.memory.uow import MemoryDatabase
from domain.errors import Invalid, LimitReached
from domain.projects import Membership, Role
from domain.tasks import DEFAULT_MAX_TASKS_PER_OWNER, TaskDraft, TaskLimitReached
from domain.use_cases.tasks import CreateTask, DeleteTask, DeleteTrashedTask
from tests.unit.projects.support import Who, World
from tests.unit.tasks.cap_contract import check_the_cap
from tests.unit.tasks.fakes import T0
from tests.unit.tasks.trash_contract import check_the_trash

ALICE, BOB = "alice", "bob"


async def test_the_memory_twin_keeps_the_cap_contract() -> None:
    database = MemoryDatabase()
    await check_the_cap(lambda: MemoryProjectUnitOfWork(database), ALICE, BOB)


class Tasks:
    """Create and delete on the memory twin; ALICE and BOB are callers with an inbox each."""

    def __init__(self, max_tasks: int | None = None) -> None:
        self.world = World()
        self.database, self.events = self.world.database, self.world.events
        cap = {} if max_tasks is None else {"max_tasks": max_tasks}
        world = self.world
        self.create = CreateTask(world.uow, world.clock, world.ids, world.events, **cap)
        self.delete = DeleteTask(world.uow, world.clock, world.events, ids=world.ids)
        self.delete_for_good = DeleteTrashedTask(
            world.uow, world.clock, world.events, ids=world.ids
        )
        self.callers = {name: self._with_inbox(name) for name in (ALICE, BOB)}

    def _with_inbox(self, name: str) -> Who:
        user = self.world.user(name)
        self.world.join(self.world.project("Inbox", inbox=True), user, Role.OWNER)
        return Who(user.id)


async def test_create_past_the_cap_is_limit_reached_and_writes_and_announces_nothing() -> None:
    tasks = Tasks(max_tasks=2)
    made = [
        await tasks.create.execute(tasks.callers[ALICE], TaskDraft(title=f"t{n}")) for n in range(2)
    ]
    with pytest.raises(TaskLimitReached) as refused:
        await tasks.create.execute(tasks.callers[ALICE], TaskDraft(title="one too many"))
    assert isinstance(refused.value, LimitReached)  # 409 limit-reached over HTTP
    assert "2 tasks" in refused.value.detail
    assert set(tasks.database.tables["tasks"]) == {task.id for task in made}
    assert len(tasks.events.events) == 2

    # In the trash it still takes its place; deleted for good it frees it.
    await tasks.delete.execute(tasks.callers[ALICE], made[0].id)
    with pytest.raises(TaskLimitReached):
        await tasks.create.execute(tasks.callers[ALICE], TaskDraft(title="still no room"))
    await tasks.delete_for_good.execute(tasks.callers[ALICE], made[0].id)
    again = await tasks.create.execute(tasks.callers[ALICE], TaskDraft(title="room again"))
    assert set(tasks.database.tables["tasks"]) == {made[1].id, again.id}


async def test_bad_input_at_the_cap_is_still_invalid() -> None:
    tasks = Tasks(max_tasks=1)
    await tasks.create.execute(tasks.callers[ALICE], TaskDraft(title="only"))
    with pytest.raises(Invalid):
        await tasks.create.execute(tasks.callers[ALICE], TaskDraft(title=" "))


async def test_without_a_setting_the_cap_is_100000() -> None:
    tasks = Tasks()
    first = await tasks.create.execute(tasks.callers[ALICE], TaskDraft(title="t"))
    rows = tasks.database.tables["tasks"]
    rows.update({f"copy-{n}": first for n in range(DEFAULT_MAX_TASKS_PER_OWNER - 2)})
    await tasks.create.execute(tasks.callers[ALICE], TaskDraft(title="the 100000th"))
    with pytest.raises(TaskLimitReached, match="100000 tasks"):
        await tasks.create.execute(tasks.callers[ALICE], TaskDraft(title="the 100001st"))
    await tasks.create.execute(tasks.callers[BOB], TaskDraft(title="someone else's first"))


async def test_the_memory_twin_keeps_the_trash_contract() -> None:
    database = MemoryDatabase()
    database.tables["memberships"]["project-1/alice"] = Membership(
        "project-1", ALICE, Role.OWNER, T0
    )
    await check_the_trash(lambda: MemoryProjectUnitOfWork(database), ALICE, "project-1")
