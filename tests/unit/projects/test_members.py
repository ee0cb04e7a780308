"""Member use cases: list, add by e-mail, change role, remove or leave."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from domain.errors import Conflict, Forbidden, Invalid, NotFound
from domain.projects import Member, Role
from tests.unit.projects.support import Team, Who, World, team


def roles(members: Sequence[Member]) -> list[tuple[str, Role]]:
    return [(m.membership.user_id, m.membership.role) for m in members]


async def test_list_owners_first_then_by_added_at() -> None:
    t = team()
    late_owner = t.world.user("late")
    t.world.join(t.project, late_owner, Role.OWNER)
    members = await t.world.list_members.execute(Who(t.viewer.id), t.project.id)
    assert roles(members) == [
        (t.owner.id, Role.OWNER),
        (late_owner.id, Role.OWNER),
        (t.editor.id, Role.EDITOR),
        (t.viewer.id, Role.VIEWER),
    ]
    assert (members[0].email, members[0].name) == (t.owner.email, t.owner.name)


async def test_add_by_email_case_insensitively() -> None:
    t = team()
    newbie = t.world.user("newbie")
    t.world.clock.advance()
    member = await t.world.add_member.execute(
        Who(t.owner.id), t.project.id, "  NEWBIE@Example.COM ", "viewer"
    )
    assert (member.membership.user_id, member.membership.role) == (newbie.id, Role.VIEWER)
    assert member.membership.added_at == t.world.clock.now()
    assert member.email == newbie.email
    # The new member sees the project at once.
    view = await t.world.get_project.execute(Who(newbie.id), t.project.id)
    assert view.role is Role.VIEWER


@pytest.mark.parametrize(
    ("email", "role", "fields"),
    [
        ("nobody@example.com", "editor", ["email"]),
        ("not an address", "editor", ["email"]),
        (42, "editor", ["email"]),
        ("newbie@example.com", "admin", ["role"]),
        ("newbie@example.com", None, ["role"]),
        ("nobody@example.com", "admin", ["role", "email"]),
    ],
)
async def test_bad_member_fields(email: object, role: object, fields: list[str]) -> None:
    t = team()
    t.world.user("newbie")
    before = t.world.snapshot()
    with pytest.raises(Invalid) as caught:
        await t.world.add_member.execute(Who(t.owner.id), t.project.id, email, role)
    assert [e.field for e in caught.value.errors] == fields
    assert t.world.snapshot() == before


async def test_adding_a_member_twice_is_a_conflict() -> None:
    t = team()
    before = t.world.snapshot()
    with pytest.raises(Conflict):
        await t.world.add_member.execute(Who(t.owner.id), t.project.id, t.viewer.email, "owner")
    assert t.world.snapshot() == before


async def test_an_inbox_cannot_be_shared() -> None:
    world = World()
    alice, bob = world.user("alice"), world.user("bob")
    inbox = await world.create_inbox.execute(alice.id)
    before = world.snapshot()
    with pytest.raises(Conflict, match="inbox"):
        await world.add_member.execute(Who(alice.id), inbox.id, bob.email, "viewer")
    # Even with a bad e-mail the inbox answer comes first.
    with pytest.raises(Conflict, match="inbox"):
        await world.add_member.execute(Who(alice.id), inbox.id, "nobody@example.com", "viewer")
    assert world.snapshot() == before


async def test_change_role() -> None:
    t = team()
    member = await t.world.update_member.execute(
        Who(t.owner.id), t.project.id, t.viewer.id, "owner"
    )
    assert member.membership.role is Role.OWNER
    # Two owners now: the first may step down to editor.
    member = await t.world.update_member.execute(
        Who(t.owner.id), t.project.id, t.owner.id, "editor"
    )
    assert member.membership.role is Role.EDITOR
    with pytest.raises(Forbidden):  # no longer an owner
        await t.world.update_project.execute(Who(t.owner.id), t.project.id, {"name": "x"})


async def test_demoting_the_last_owner_is_a_conflict() -> None:
    t = team()
    before = t.world.snapshot()
    for role in ("editor", "viewer"):
        with pytest.raises(Conflict, match="last owner"):
            await t.world.update_member.execute(Who(t.owner.id), t.project.id, t.owner.id, role)
    assert t.world.snapshot() == before
    same = await t.world.update_member.execute(Who(t.owner.id), t.project.id, t.owner.id, "owner")
    assert same.membership.role is Role.OWNER
    assert t.world.snapshot() == before


async def test_changing_a_non_member_or_bad_role() -> None:
    t = team()
    before = t.world.snapshot()
    # A user of another project (BOLA) and an unknown id: both not found.
    for user_id in (t.outsider.id, "00000000-0000-0000-0000-00000000dead"):
        with pytest.raises(NotFound, match="member"):
            await t.world.update_member.execute(Who(t.owner.id), t.project.id, user_id, "editor")
        with pytest.raises(NotFound, match="member"):
            await t.world.remove_member.execute(Who(t.owner.id), t.project.id, user_id)
    with pytest.raises(Invalid) as caught:
        await t.world.update_member.execute(Who(t.owner.id), t.project.id, t.viewer.id, "boss")
    assert [e.field for e in caught.value.errors] == ["role"]
    assert t.world.snapshot() == before


def assignees(t: Team) -> dict[str, str | None]:
    return {n.id: n.assignee_id for n in t.world.database.tables["tasks"].values()}


async def test_removal_clears_assignments_in_that_project_only() -> None:
    t = team()
    t.world.join(t.other, t.editor, Role.EDITOR)
    here = t.world.task(t.project, assignee=t.editor.id)
    someone_else = t.world.task(t.project, assignee=t.viewer.id)
    elsewhere = t.world.task(t.other, assignee=t.editor.id)
    await t.world.remove_member.execute(Who(t.owner.id), t.project.id, t.editor.id)
    assert assignees(t) == {here.id: None, someone_else.id: t.viewer.id, elsewhere.id: t.editor.id}
    # Removal takes effect at once: the former member sees nothing of the project.
    with pytest.raises(NotFound):
        await t.world.get_project.execute(Who(t.editor.id), t.project.id)
    with pytest.raises(NotFound):
        await t.world.list_comments.execute(Who(t.editor.id), here.id)


async def test_a_member_may_leave_and_the_last_owner_may_not() -> None:
    t = team()
    task = t.world.task(t.project, assignee=t.viewer.id)
    await t.world.remove_member.execute(Who(t.viewer.id), t.project.id, t.viewer.id)
    assert assignees(t) == {task.id: None}
    before = t.world.snapshot()
    with pytest.raises(Conflict, match="last owner"):
        await t.world.remove_member.execute(Who(t.owner.id), t.project.id, t.owner.id)
    assert t.world.snapshot() == before
    # With a second owner, the first may leave.
    await t.world.update_member.execute(Who(t.owner.id), t.project.id, t.editor.id, "owner")
    await t.world.remove_member.execute(Who(t.owner.id), t.project.id, t.owner.id)
    members = await t.world.list_members.execute(Who(t.editor.id), t.project.id)
    assert roles(members) == [(t.editor.id, Role.OWNER)]


async def test_an_owner_may_remove_another_owner() -> None:
    t = team()
    await t.world.update_member.execute(Who(t.owner.id), t.project.id, t.editor.id, "owner")
    await t.world.remove_member.execute(Who(t.editor.id), t.project.id, t.owner.id)
    members = await t.world.list_members.execute(Who(t.editor.id), t.project.id)
    assert roles(members) == [(t.editor.id, Role.OWNER), (t.viewer.id, Role.VIEWER)]
