"""The memory unit of work over the project tables: nothing sticks without a commit."""

from __future__ import annotations

from datetime import timedelta

import pytest

from domain.comments import Comment
from domain.projects import Membership, Project, Role
from domain.task_tree import TaskNode
from domain.tasks import DEFAULT_MAX_TASKS_PER_OWNER
from tests.unit.projects.support import World
from tests.unit.tasks.fakes import T0, make_task

T1 = T0 + timedelta(hours=1)


async def add_then_fail(world: World, project: Project) -> None:
    async with world.uow() as uow:
        await uow.projects.add(project)
        raise RuntimeError


async def test_leaving_without_commit_changes_nothing() -> None:
    world = World()
    alice = world.user("alice")
    before = world.snapshot()
    project = Project("p1", "P", None, False, T0, T0, 1)
    async with world.uow() as uow:
        await uow.projects.add(project)
        await uow.memberships.add(Membership("p1", alice.id, Role.OWNER, T0))
        await uow.comments.add(Comment("c1", "t1", alice.id, "hi", T0))
        assert await uow.projects.get("p1") == project
    assert world.snapshot() == before
    with pytest.raises(RuntimeError):
        await add_then_fail(world, project)
    assert world.snapshot() == before
    async with world.uow() as uow:
        await uow.projects.add(project)
        await uow.commit()
    assert world.database.tables["projects"] == {"p1": project}


async def test_task_placement_queries() -> None:
    world = World()
    async with world.uow() as uow:
        for task_id, project, parent, assignee in (
            ("a", "p", None, "u1"),
            ("b", "p", "a", "u1"),
            ("c", "p", "b", None),
            ("d", "p", "a", None),
            ("e", "q", None, "u1"),
        ):
            made = make_task(task_id, project_id=project, parent_id=parent, assignee_id=assignee)
            await uow.tasks.add(made, limit=DEFAULT_MAX_TASKS_PER_OWNER)
        await uow.commit()
    async with world.uow() as uow:
        assert await uow.project_tasks.ancestors("c") == ["b", "a"]
        assert await uow.project_tasks.ancestors("a") == []
        assert sorted(n.id for n in await uow.project_tasks.subtree("b")) == ["b", "c"]
        assert sorted(n.id for n in await uow.project_tasks.subtree("a")) == ["a", "b", "c", "d"]
        assert sorted(t.id for t in await uow.project_tasks.subtree_tasks("a")) == ["b", "c", "d"]
        assert await uow.project_tasks.subtree("zz") == []
        assert len(await uow.project_tasks.clear_assignee("p", "u1", T1)) == 2
        assert (await uow.project_tasks.node("e")) == TaskNode("e", "q", None, "u1")
        assert (await uow.project_tasks.node("a")) == TaskNode("a", "p", None, None)
        cleared = await uow.tasks.get("a", "u1")
        assert cleared is not None
        assert (cleared.task.version, cleared.task.updated_at) == (2, T1)


async def test_membership_twin() -> None:
    world = World()
    alice, bob = world.user("alice"), world.user("bob")
    async with world.uow() as uow:
        await uow.memberships.add(Membership("p", alice.id, Role.OWNER, T0))
        await uow.memberships.add(Membership("p", bob.id, Role.VIEWER, T0))
        assert await uow.memberships.count_owners("p") == 1
        assert await uow.memberships.member_ids("p") == {alice.id, bob.id}
        assert await uow.memberships.set_role("p", "nobody", Role.OWNER) is None
        changed = await uow.memberships.set_role("p", bob.id, Role.OWNER)
        assert changed == Membership("p", bob.id, Role.OWNER, T0)
        assert await uow.memberships.count_owners("p") == 2
        assert [m.project_id for m in await uow.memberships.for_user(bob.id)] == ["p"]
        member = await uow.memberships.get_member("p", bob.id)
        assert member is not None
        assert (member.email, member.name, member.membership.role) == (
            bob.email,
            bob.name,
            Role.OWNER,
        )
        assert await uow.memberships.get_member("p", "nobody") is None
        assert await uow.memberships.remove("p", bob.id)
        assert not await uow.memberships.remove("p", bob.id)
