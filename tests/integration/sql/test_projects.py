"""The project ports' contract, run on the memory twin and on the SQL unit of work (through
SQLAlchemy on both databases, and the raw-connection mode on PostgreSQL): the same assertions
hold for every one of them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.memory.projects import MemoryProjectUnitOfWork
from adapters.memory.uow import MemoryDatabase
from adapters.sql.uow import SqlProjectUnitOfWork
from domain.comments import Comment, CommentPosition
from domain.errors import Conflict
from domain.projects import Membership, Project, Role
from domain.task_tree import TaskNode
from domain.tasks import DEFAULT_MAX_TASKS_PER_OWNER, TaskLimitReached
from domain.users import User
from tests.integration.sql.conftest import make_user, new_id
from tests.integration.sql.test_tasks import make_task

T0 = datetime(2026, 4, 5, 6, 7, 8, 123456, tzinfo=UTC)

KINDS = ("memory", "sqlalchemy", "raw")


@dataclass
class Backend:
    kind: str
    uow: Callable[[], Any]  # a ProjectUnitOfWork (with `tasks`)
    users_uow: Callable[[], Any]  # one that reaches users too

    async def user(self) -> User:
        user = make_user()
        async with self.users_uow() as uow:
            await uow.users.add(user)
            await uow.commit()
        return user

    async def project(self, owner: User, *, inbox: bool = False, at: datetime = T0) -> Project:
        project = Project(new_id(), "Inbox" if inbox else "P", None, inbox, at, at, 1)
        async with self.uow() as uow:
            await uow.projects.add(project, inbox_of=owner.id if inbox else None)
            await uow.memberships.add(Membership(project.id, owner.id, Role.OWNER, at))
            await uow.commit()
        return project


@pytest.fixture(params=KINDS)
def backend(request: pytest.FixtureRequest, engine: AsyncEngine) -> Backend:
    kind = request.param
    if kind == "memory":
        database = MemoryDatabase()
        return Backend(kind, lambda: MemoryProjectUnitOfWork(database), lambda: None)
    made = Backend(kind, lambda: SqlProjectUnitOfWork(engine, raw=kind == "raw"), lambda: None)
    made.users_uow = lambda: SqlProjectUnitOfWork(engine)
    return made


@pytest.fixture(autouse=True)
def _memory_users(backend: Backend) -> None:
    if backend.kind == "memory":
        backend.users_uow = backend.uow


async def test_projects_round_trip_update_and_list_oldest_first(backend: Backend) -> None:
    alice, bob = await backend.user(), await backend.user()
    later = await backend.project(alice, at=T0 + timedelta(hours=1))
    inbox = await backend.project(alice, inbox=True)
    shared = await backend.project(bob, at=T0 + timedelta(hours=2))
    async with backend.uow() as uow:
        await uow.memberships.add(Membership(shared.id, alice.id, Role.VIEWER, T0))
        await uow.commit()
    async with backend.uow() as uow:
        assert await uow.projects.get(inbox.id) == inbox
        assert await uow.projects.get(inbox.id, for_update=True) == inbox
        assert await uow.projects.get(new_id()) is None
        assert await uow.projects.get("not-a-uuid") is None
        assert await uow.projects.inbox_of(alice.id) == inbox
        assert await uow.projects.inbox_of(bob.id) is None
        views = await uow.projects.list_for_user(alice.id, None)
        assert [(v.project.id, v.role) for v in views] == [
            (inbox.id, Role.OWNER),
            (later.id, Role.OWNER),
            (shared.id, Role.VIEWER),
        ]
        only = await uow.projects.list_for_user(alice.id, {shared.id, new_id()})
        assert [v.project.id for v in only] == [shared.id]
        renamed = replace(later, name="Renamed", description="d", version=2, updated_at=T0)
        assert await uow.projects.update(renamed, expected_version=2) is False
        assert await uow.projects.update(renamed, expected_version=1) is True
        await uow.commit()
    async with backend.uow() as uow:
        assert await uow.projects.get(later.id) == renamed


async def test_a_user_has_one_inbox(backend: Backend) -> None:
    alice = await backend.user()
    await backend.project(alice, inbox=True)
    second = Project(new_id(), "Inbox", None, True, T0, T0, 1)

    async def add_second() -> None:
        async with backend.uow() as uow:
            await uow.projects.add(second, inbox_of=alice.id)
            await uow.commit()

    with pytest.raises(Conflict):
        await add_second()


async def test_deleting_a_project_takes_members_tasks_and_comments(backend: Backend) -> None:
    alice, bob = await backend.user(), await backend.user()
    doomed, kept = await backend.project(alice), await backend.project(alice)
    task, other = make_task(alice.id, project_id=doomed.id), make_task(alice.id, project_id=kept.id)
    child = make_task(alice.id, project_id=doomed.id, parent_id=task.id)
    note = Comment(new_id(), task.id, alice.id, "hi", T0)
    async with backend.uow() as uow:
        await uow.memberships.add(Membership(doomed.id, bob.id, Role.EDITOR, T0))
        for each in (task, child, other):
            await uow.tasks.add(each, limit=DEFAULT_MAX_TASKS_PER_OWNER)
        await uow.comments.add(note)
        await uow.commit()
    async with backend.uow() as uow:
        assert await uow.projects.delete(doomed.id) is True
        assert await uow.projects.delete(doomed.id) is False
        await uow.commit()
    async with backend.uow() as uow:
        assert await uow.projects.get(doomed.id) is None
        assert await uow.memberships.for_user(bob.id) == []
        assert await uow.project_tasks.node(task.id) is None
        assert await uow.project_tasks.node(child.id) is None
        assert await uow.comments.get(task.id, note.id) is None
        assert await uow.project_tasks.node(other.id) == TaskNode(other.id, kept.id, None)


async def test_memberships(backend: Backend) -> None:
    alice, bob, carol = await backend.user(), await backend.user(), await backend.user()
    project = await backend.project(alice)
    async with backend.uow() as uow:
        await uow.memberships.add(Membership(project.id, carol.id, Role.VIEWER, T0 - timedelta(1)))
        await uow.memberships.add(Membership(project.id, bob.id, Role.EDITOR, T0 + timedelta(1)))
        await uow.commit()
    async with backend.uow() as uow:
        assert await uow.memberships.get(project.id, bob.id) == Membership(
            project.id, bob.id, Role.EDITOR, T0 + timedelta(1)
        )
        assert await uow.memberships.get(project.id, new_id()) is None
        assert await uow.memberships.count_owners(project.id) == 1
        members = await uow.memberships.list_members(project.id)
        # owners first, then by added_at
        assert [m.membership.user_id for m in members] == [alice.id, carol.id, bob.id]
        assert (members[0].email, members[0].name) == (alice.email, alice.name)
        assert await uow.memberships.member_ids(project.id) == {alice.id, bob.id, carol.id}
        promoted = await uow.memberships.set_role(project.id, bob.id, Role.OWNER)
        assert promoted == Membership(project.id, bob.id, Role.OWNER, T0 + timedelta(1))
        assert await uow.memberships.set_role(project.id, new_id(), Role.OWNER) is None
        assert await uow.memberships.count_owners(project.id) == 2
        member = await uow.memberships.get_member(project.id, carol.id)
        assert member is not None
        assert (member.membership.role, member.email) == (Role.VIEWER, carol.email)
        assert await uow.memberships.remove(project.id, carol.id) is True
        assert await uow.memberships.remove(project.id, carol.id) is False
        assert [m.project_id for m in await uow.memberships.for_user(bob.id)] == [project.id]
        await uow.commit()
    async with backend.uow() as uow:
        assert await uow.memberships.member_ids(project.id) == {alice.id, bob.id}


async def test_comments_page_oldest_first(backend: Backend) -> None:
    alice = await backend.user()
    project = await backend.project(alice)
    task, other = (
        make_task(alice.id, project_id=project.id),
        make_task(alice.id, project_id=project.id),
    )
    stamps = [T0, T0, T0 + timedelta(seconds=1), T0 + timedelta(seconds=2)]
    notes = sorted(
        (Comment(new_id(), task.id, alice.id, f"note {n}", at) for n, at in enumerate(stamps)),
        key=lambda c: (c.created_at, c.id),
    )
    async with backend.uow() as uow:
        await uow.tasks.add(task, limit=DEFAULT_MAX_TASKS_PER_OWNER)
        await uow.tasks.add(other, limit=DEFAULT_MAX_TASKS_PER_OWNER)
        for note in notes:
            await uow.comments.add(note)
        await uow.comments.add(Comment(new_id(), other.id, alice.id, "elsewhere", T0))
        await uow.commit()
    async with backend.uow() as uow:
        assert await uow.comments.get(task.id, notes[0].id) == notes[0]
        assert await uow.comments.get(other.id, notes[0].id) is None
        first = await uow.comments.list_page(task.id, None, limit=3)
        assert first == notes[:3]
        rest = await uow.comments.list_page(task.id, CommentPosition.of(first[-1]), limit=3)
        assert rest == notes[3:]
        assert await uow.comments.delete(notes[1].id) is True
        assert await uow.comments.delete(notes[1].id) is False
        await uow.commit()
    async with backend.uow() as uow:
        remaining = await uow.comments.list_page(task.id, None, limit=10)
        assert remaining == [notes[0], *notes[2:]]


async def test_where_tasks_sit(backend: Backend) -> None:
    alice, bob = await backend.user(), await backend.user()
    project, elsewhere = await backend.project(alice), await backend.project(alice)
    a = make_task(alice.id, project_id=project.id, assignee_id=bob.id)
    b = make_task(alice.id, project_id=project.id, parent_id=a.id, assignee_id=bob.id)
    c = make_task(alice.id, project_id=project.id, parent_id=b.id)
    d = make_task(alice.id, project_id=project.id, parent_id=a.id)
    e = make_task(alice.id, project_id=elsewhere.id, assignee_id=bob.id)
    async with backend.uow() as uow:
        for each in (a, b, c, d, e):
            await uow.tasks.add(each, limit=DEFAULT_MAX_TASKS_PER_OWNER)
        await uow.commit()
    later = T0 + timedelta(days=1)
    async with backend.uow() as uow:
        tasks = uow.project_tasks
        assert await tasks.node(c.id) == TaskNode(c.id, project.id, b.id, None)
        assert await tasks.node(new_id()) is None
        assert await tasks.ancestors(c.id) == [b.id, a.id]
        assert await tasks.ancestors(a.id) == []
        assert {n.id for n in await tasks.subtree(a.id)} == {a.id, b.id, c.id, d.id}
        assert {n.id for n in await tasks.subtree(b.id)} == {b.id, c.id}
        assert await tasks.subtree(new_id()) == []
        below = await tasks.subtree_tasks(a.id)
        assert sorted(t.id for t in below) == sorted([b.id, c.id, d.id])
        assert {t.id: t for t in below}[b.id] == b
        assert len(await tasks.clear_assignee(project.id, bob.id, later)) == 2
        await uow.commit()
    async with backend.uow() as uow:
        below = {t.id: t for t in await uow.project_tasks.subtree_tasks(a.id)}
        cleared = below[b.id]
        assert (cleared.id, cleared.assignee_id, cleared.version, cleared.updated_at) == (
            b.id,
            None,
            2,
            later,
        )
        assert await uow.project_tasks.node(e.id) == TaskNode(e.id, elsewhere.id, None, bob.id)


async def test_leaving_without_commit_changes_nothing(backend: Backend) -> None:
    alice = await backend.user()
    project = Project(new_id(), "P", None, False, T0, T0, 1)
    async with backend.uow() as uow:
        await uow.projects.add(project)
        await uow.memberships.add(Membership(project.id, alice.id, Role.OWNER, T0))
        assert await uow.projects.get(project.id) == project  # reads its own writes
    async with backend.uow() as uow:
        assert await uow.projects.get(project.id) is None
        assert await uow.memberships.for_user(alice.id) == []


async def test_a_task_is_added_only_for_a_member_with_a_writing_role(backend: Backend) -> None:
    alice, bob, carol = await backend.user(), await backend.user(), await backend.user()
    project = await backend.project(alice)
    inbox = await backend.project(bob, inbox=True)
    async with backend.uow() as uow:
        await uow.memberships.add(Membership(project.id, bob.id, Role.VIEWER, T0))
        await uow.commit()
    writers = frozenset({Role.OWNER, Role.EDITOR})
    labelled = make_task(alice.id, project_id=project.id, labels=("x", "y"), description="d")
    cases = [
        (labelled, alice.id, False, project.id),
        (make_task(bob.id, project_id=project.id), bob.id, False, None),  # a viewer
        (make_task(carol.id, project_id=project.id), carol.id, False, None),  # no member
        (make_task(bob.id, project_id=""), bob.id, True, inbox.id),  # the inbox
        (make_task(carol.id, project_id=""), carol.id, True, None),  # has no inbox
        (make_task(alice.id, project_id="nope"), alice.id, False, None),
    ]
    for task, user_id, inbox_wanted, placed_in in cases:
        async with backend.uow() as uow:
            placed = await uow.tasks.add_as_member(
                task, user_id=user_id, roles=writers, inbox=inbox_wanted, limit=100
            )
            await uow.commit()
        expected = None if placed_in is None else replace(task, project_id=placed_in)
        assert placed == expected, (user_id, inbox_wanted)
        async with backend.uow() as uow:
            found = await uow.tasks.get(task.id, user_id)
        assert (found.task if found is not None else None) == expected
    # At the cap a writer's insert is refused as such and writes nothing; one who may not write
    # there learns nothing about the cap (the access answer comes first).
    for task, user_id, inbox_wanted, refused in (
        (make_task(alice.id, project_id=project.id), alice.id, False, True),
        (make_task(bob.id, project_id=project.id), bob.id, False, False),  # a viewer
        (make_task(bob.id, project_id=""), bob.id, True, True),
    ):
        async with backend.uow() as uow:
            if refused:
                with pytest.raises(TaskLimitReached):
                    await uow.tasks.add_as_member(
                        task, user_id=user_id, roles=writers, inbox=inbox_wanted, limit=1
                    )
            else:
                assert (
                    await uow.tasks.add_as_member(
                        task, user_id=user_id, roles=writers, inbox=inbox_wanted, limit=1
                    )
                    is None
                )
                await uow.commit()
        async with backend.uow() as uow:
            assert await uow.tasks.get(task.id, user_id) is None
