"""Project use cases: create, list, get, update, delete, and the inbox."""

from __future__ import annotations

import pytest

from domain.errors import Conflict, Invalid, NotFound, PreconditionFailed
from domain.projects import Project, ProjectDraft, ProjectView, Role
from domain.use_cases.projects import open_inbox
from tests.unit.projects.support import Who, World, team


async def test_creator_becomes_the_only_owner() -> None:
    world = World()
    alice = world.user("alice")
    view = await world.create_project.execute(Who(alice.id), ProjectDraft("  Launch ", "plan"))
    assert view.role is Role.OWNER
    assert (view.project.name, view.project.description, view.project.inbox) == (
        "Launch",
        "plan",
        False,
    )
    assert view.project.version == 1
    members = await world.list_members.execute(Who(alice.id), view.project.id)
    assert [(m.membership.user_id, m.membership.role, m.email) for m in members] == [
        (alice.id, Role.OWNER, alice.email)
    ]
    assert await world.get_project.execute(Who(alice.id), view.project.id) == view


async def test_bad_project_fields_are_named_and_nothing_is_created() -> None:
    world = World()
    alice = world.user("alice")
    before = world.snapshot()
    with pytest.raises(Invalid) as caught:
        await world.create_project.execute(Who(alice.id), ProjectDraft(" ", "d" * 20_001))
    assert [e.field for e in caught.value.errors] == ["name", "description"]
    assert world.snapshot() == before


async def test_list_is_oldest_first_with_roles_then_by_id() -> None:
    t = team()
    world = t.world
    # Two projects created at the same instant sort by id.
    now = world.clock.now()
    later = [
        Project(i, "Same time", None, False, now, now, 1)
        for i in ("ffffffff-0000-7000-8000-000000000000", "00000000-0000-7000-8000-0000000000ff")
    ]
    for project in later:
        world.database.tables["projects"][project.id] = project
        world.join(project, t.viewer, Role.EDITOR)
    views = await world.list_projects.execute(Who(t.viewer.id))
    assert [(v.project.id, v.role) for v in views] == [
        (t.project.id, Role.VIEWER),
        (later[1].id, Role.EDITOR),
        (later[0].id, Role.EDITOR),
    ]
    owner_views = await world.list_projects.execute(Who(t.owner.id))
    assert [v.project.id for v in owner_views] == [t.project.id, t.other.id]


async def test_restricted_key_lists_only_its_projects() -> None:
    t = team()
    key = Who(t.owner.id, project_ids=frozenset({t.other.id, t.outsiders_project.id}))
    views = await t.world.list_projects.execute(key)
    # The outsider's project is listed on the key but the owner is no member: not shown.
    assert [v.project.id for v in views] == [t.other.id]


@pytest.mark.parametrize("project_id", ["not-a-uuid", "00000000-0000-0000-0000-00000000dead"])
async def test_unknown_ids_are_not_found(project_id: str) -> None:
    t = team()
    with pytest.raises(NotFound):
        await t.world.get_project.execute(Who(t.owner.id), project_id)


async def test_another_users_project_is_not_found_for_every_verb() -> None:
    t = team()
    mallory, theirs = Who(t.outsider.id), t.project.id
    before = t.world.snapshot()
    calls = [
        t.world.get_project.execute(mallory, theirs),
        t.world.update_project.execute(mallory, theirs, {"name": "pwned"}),
        t.world.delete_project.execute(mallory, theirs),
        t.world.list_members.execute(mallory, theirs),
        t.world.add_member.execute(mallory, theirs, t.outsider.email, "owner"),
        t.world.update_member.execute(mallory, theirs, t.owner.id, "viewer"),
        t.world.remove_member.execute(mallory, theirs, t.owner.id),
    ]
    for call in calls:
        with pytest.raises(NotFound) as caught:
            await call
        assert caught.value.detail == f"project {theirs!r} not found"
    assert t.world.snapshot() == before


async def test_update_merge_patch_and_versions() -> None:
    t = team()
    owner = Who(t.owner.id)
    t.world.clock.advance()
    view = await t.world.update_project.execute(
        owner, t.project.id, {"description": "why"}, expected_version=1
    )
    assert (view.project.description, view.project.version, view.role) == ("why", 2, Role.OWNER)
    assert view.project.updated_at == t.world.clock.now()
    same = await t.world.update_project.execute(owner, t.project.id, {"name": "Shared"})
    assert same.project.version == 2
    cleared = await t.world.update_project.execute(owner, t.project.id, {"description": None})
    assert (cleared.project.description, cleared.project.version) == (None, 3)


async def test_stale_version_is_precondition_failed_before_the_patch_is_checked() -> None:
    t = team()
    before = t.world.snapshot()
    with pytest.raises(PreconditionFailed):
        await t.world.update_project.execute(
            Who(t.owner.id), t.project.id, {"name": ""}, expected_version=7
        )
    with pytest.raises(PreconditionFailed):
        await t.world.delete_project.execute(Who(t.owner.id), t.project.id, expected_version=7)
    assert t.world.snapshot() == before


async def test_bad_patch_changes_nothing() -> None:
    t = team()
    before = t.world.snapshot()
    with pytest.raises(Invalid) as caught:
        await t.world.update_project.execute(
            Who(t.owner.id), t.project.id, {"name": "ok", "inbox": True, "description": 5}
        )
    assert [e.field for e in caught.value.errors] == ["inbox", "description"]
    assert t.world.snapshot() == before


async def test_delete_removes_tasks_comments_and_memberships() -> None:
    t = team()
    world = t.world
    task = world.task(t.project)
    kept = world.task(t.other)
    comment = await world.create_comment.execute(Who(t.editor.id), task.id, "bye")
    await world.create_comment.execute(Who(t.owner.id), kept.id, "stays")
    await world.delete_project.execute(Who(t.owner.id), t.project.id)
    for who in (t.owner, t.editor, t.viewer):
        with pytest.raises(NotFound):
            await world.get_project.execute(Who(who.id), t.project.id)
        assert t.project.id not in [
            v.project.id for v in await world.list_projects.execute(Who(who.id))
        ]
    tables = world.database.tables
    assert task.id not in tables["tasks"]
    assert comment.id not in tables["comments"]
    assert kept.id in tables["tasks"]
    assert len(tables["comments"]) == 1
    assert not [m for m in tables["memberships"].values() if m.project_id == t.project.id]


async def test_inbox_cannot_be_deleted_but_can_be_renamed() -> None:
    world = World()
    alice = world.user("alice")
    inbox = await world.create_inbox.execute(alice.id)
    assert (inbox.name, inbox.inbox) == ("Inbox", True)
    before = world.snapshot()
    with pytest.raises(Conflict):
        await world.delete_project.execute(Who(alice.id), inbox.id)
    assert world.snapshot() == before
    renamed = await world.update_project.execute(Who(alice.id), inbox.id, {"name": "Mine"})
    assert renamed == ProjectView(
        Project(inbox.id, "Mine", None, True, inbox.created_at, world.clock.now(), 2), Role.OWNER
    )


async def test_each_user_has_one_inbox() -> None:
    world = World()
    alice, bob = world.user("alice"), world.user("bob")
    first = await world.create_inbox.execute(alice.id)
    assert await world.create_inbox.execute(alice.id) == first
    bobs = await world.create_inbox.execute(bob.id)
    assert bobs.id != first.id
    views = await world.list_projects.execute(Who(alice.id))
    assert [(v.project.id, v.role) for v in views] == [(first.id, Role.OWNER)]


async def test_open_inbox_runs_inside_a_callers_transaction() -> None:
    world = World()
    alice = world.user("alice")
    async with world.uow() as uow:
        inbox = await open_inbox(
            uow.projects,
            uow.memberships,
            user_id=alice.id,
            project_id=world.ids.new_id(),
            now=world.clock.now(),
        )
        # Not committed: nothing is stored.
    assert inbox.id not in world.database.tables["projects"]
