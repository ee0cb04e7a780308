"""Every project use case against every kind of caller: who succeeds, who gets 403, who 404,
and that a refused call changes nothing."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from domain.comments import Comment
from domain.errors import Conflict, DomainError, Forbidden, NotFound
from domain.projects import ProjectDraft, Role
from tests.unit.projects.support import Team, Who, team

OK = None
CALLERS = (
    "owner",
    "editor",
    "viewer",
    "non_member",
    "key_inside",
    "key_outside",
    "key_tasks_only",
    "key_read_only",
)

type Run = Callable[[Who], Awaitable[object]]
type Act = Callable[[Team], Run]


def get_project(t: Team) -> Run:
    return lambda who: t.world.get_project.execute(who, t.project.id)


def list_members(t: Team) -> Run:
    return lambda who: t.world.list_members.execute(who, t.project.id)


def update_project(t: Team) -> Run:
    return lambda who: t.world.update_project.execute(who, t.project.id, {"name": "Renamed"})


def delete_project(t: Team) -> Run:
    return lambda who: t.world.delete_project.execute(who, t.project.id)


def add_member(t: Team) -> Run:
    newbie = t.world.user("newbie")
    return lambda who: t.world.add_member.execute(who, t.project.id, newbie.email, "editor")


def update_member(t: Team) -> Run:
    return lambda who: t.world.update_member.execute(who, t.project.id, t.viewer.id, "editor")


def remove_other_member(t: Team) -> Run:
    extra = t.world.user("extra")
    t.world.join(t.project, extra, Role.EDITOR)
    return lambda who: t.world.remove_member.execute(who, t.project.id, extra.id)


def leave(t: Team) -> Run:
    return lambda who: t.world.remove_member.execute(who, t.project.id, who.user_id)


def create_comment(t: Team) -> Run:
    task = t.world.task(t.project)
    return lambda who: t.world.create_comment.execute(who, task.id, "Looks good")


def list_comments(t: Team) -> Run:
    task = t.world.task(t.project)
    return lambda who: t.world.list_comments.execute(who, task.id)


def delete_editors_comment(t: Team) -> Run:
    task = t.world.task(t.project)
    comment = Comment(t.world.ids.new_id(), task.id, t.editor.id, "hi", t.world.clock.now())
    t.world.database.tables["comments"][comment.id] = comment
    return lambda who: t.world.delete_comment.execute(who, task.id, comment.id)


def create_project(t: Team) -> Run:
    return lambda who: t.world.create_project.execute(who, ProjectDraft("New"))


def list_projects(t: Team) -> Run:
    return lambda who: t.world.list_projects.execute(who)


F, N, C = Forbidden, NotFound, Conflict
# Expected outcome per caller, in the order of CALLERS.
MATRIX: dict[str, tuple[Act, tuple[type[DomainError] | None, ...]]] = {
    "get project": (get_project, (OK, OK, OK, N, OK, N, F, OK)),
    "list members": (list_members, (OK, OK, OK, N, OK, N, F, OK)),
    "update project": (update_project, (OK, F, F, N, OK, N, F, F)),
    "delete project": (delete_project, (OK, F, F, N, OK, N, F, F)),
    "add member": (add_member, (OK, F, F, N, OK, N, F, F)),
    "update member": (update_member, (OK, F, F, N, OK, N, F, F)),
    "remove another member": (remove_other_member, (OK, F, F, N, OK, N, F, F)),
    # The owner is the only owner, so leaving is a conflict for them.
    "leave": (leave, (C, OK, OK, N, C, N, F, F)),
    "create comment": (create_comment, (OK, OK, F, N, OK, N, OK, F)),
    "list comments": (list_comments, (OK, OK, OK, N, OK, N, OK, OK)),
    "delete an editor's comment": (delete_editors_comment, (OK, OK, F, N, OK, N, OK, F)),
    "create project": (create_project, (OK, OK, OK, OK, F, F, F, F)),
    "list projects": (list_projects, (OK, OK, OK, OK, OK, OK, F, OK)),
}

READS = {get_project, list_members, list_comments, list_projects}

CASES = [
    pytest.param(act, name, expected[i], id=f"{label}-{name}")
    for label, (act, expected) in MATRIX.items()
    for i, name in enumerate(CALLERS)
]


@pytest.mark.parametrize(("act", "caller", "expected"), CASES)
async def test_role_matrix(act: Act, caller: str, expected: type[DomainError] | None) -> None:
    t = team()
    run = act(t)
    before = t.world.snapshot()
    if expected is None:
        await run(t.caller(caller))
        # A read changes nothing; a write that succeeds changes something.
        assert (t.world.snapshot() == before) == (act in READS)
        return
    with pytest.raises(expected):
        await run(t.caller(caller))
    assert t.world.snapshot() == before
