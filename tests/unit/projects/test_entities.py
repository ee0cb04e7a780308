"""Project, role, membership and comment rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from domain.comments import BODY_MAX_LENGTH, new_comment
from domain.errors import Conflict, Invalid
from domain.projects import (
    Membership,
    Project,
    ProjectDraft,
    Role,
    apply_project_changes,
    ensure_deletable,
    ensure_not_member,
    ensure_owner_remains,
    ensure_shareable,
    members_order_key,
    new_inbox,
    new_project,
    parse_role,
)
from tests.unit.tasks.fakes import T0

PID = "00000000-0000-0000-0000-0000000000aa"


def fields_of(error: Invalid) -> list[str]:
    return [e.field for e in error.errors]


def make(**fields: object) -> Project:
    draft = ProjectDraft(**fields)  # type: ignore[arg-type]
    return new_project(project_id=PID, draft=draft, now=T0)


def test_new_project_is_trimmed_at_version_one() -> None:
    project = make(name="  Launch \n", description="  kept as is ")
    assert project == Project(PID, "Launch", "  kept as is ", False, T0, T0, 1)


@pytest.mark.parametrize(
    ("fields", "bad"),
    [
        ({"name": ""}, ["name"]),
        ({"name": "   "}, ["name"]),
        ({"name": None}, ["name"]),
        ({"name": 7}, ["name"]),
        ({"name": "x" * 201}, ["name"]),
        ({"name": "a\x00b"}, ["name"]),
        ({"name": "ok", "description": "d" * 20_001}, ["description"]),
        ({"name": "ok", "description": 3}, ["description"]),
        ({"name": "", "description": "d" * 20_001}, ["name", "description"]),
    ],
)
def test_bad_fields_are_named(fields: dict[str, object], bad: list[str]) -> None:
    with pytest.raises(Invalid) as caught:
        make(**fields)
    assert fields_of(caught.value) == bad


def test_bounds_are_inclusive() -> None:
    project = make(name="  " + "n" * 200 + " ", description="d" * 20_000)
    assert len(project.name) == 200
    assert project.description is not None
    assert len(project.description) == 20_000


def test_inbox() -> None:
    inbox = new_inbox(project_id=PID, now=T0)
    assert (inbox.name, inbox.inbox, inbox.version, inbox.description) == ("Inbox", True, 1, None)


def test_patch_changes_bump_version_and_time() -> None:
    later = T0 + timedelta(minutes=1)
    updated = apply_project_changes(make(name="A", description="x"), {"description": None}, later)
    assert (updated.description, updated.version, updated.updated_at) == (None, 2, later)
    assert updated.created_at == T0


def test_patch_that_changes_nothing_returns_the_same_project() -> None:
    project = make(name="A")
    assert apply_project_changes(project, {"name": "  A  "}, T0 + timedelta(1)) is project
    assert apply_project_changes(project, {}, T0 + timedelta(1)) is project


def test_inbox_can_be_renamed() -> None:
    inbox = new_inbox(project_id=PID, now=T0)
    renamed = apply_project_changes(inbox, {"name": "Mine"}, T0)
    assert (renamed.name, renamed.inbox) == ("Mine", True)


@pytest.mark.parametrize(
    ("changes", "bad"),
    [
        ({"name": None}, ["name"]),
        ({"name": "  "}, ["name"]),
        ({"inbox": False}, ["inbox"]),
        ({"version": 9, "role": "owner"}, ["version", "role"]),
        ({"colour": "red"}, ["colour"]),
        ({"name": "", "description": 1, "id": "x"}, ["id", "name", "description"]),
    ],
)
def test_bad_patches_are_named(changes: dict[str, object], bad: list[str]) -> None:
    project = make(name="A")
    with pytest.raises(Invalid) as caught:
        apply_project_changes(project, changes, T0)
    assert fields_of(caught.value) == bad


def test_roles_rank_and_parse() -> None:
    assert Role.OWNER.at_least(Role.EDITOR)
    assert Role.EDITOR.at_least(Role.EDITOR)
    assert not Role.VIEWER.at_least(Role.EDITOR)
    assert parse_role("viewer") is Role.VIEWER
    for bad in ("admin", "OWNER", None, 1):
        with pytest.raises(Invalid) as caught:
            parse_role(bad)
        assert fields_of(caught.value) == ["role"]


def test_inbox_is_neither_deleted_nor_shared() -> None:
    inbox = new_inbox(project_id=PID, now=T0)
    with pytest.raises(Conflict):
        ensure_deletable(inbox)
    with pytest.raises(Conflict):
        ensure_shareable(inbox)
    ensure_deletable(make(name="A"))
    ensure_shareable(make(name="A"))


def test_already_a_member_is_a_conflict() -> None:
    ensure_not_member(None)
    with pytest.raises(Conflict):
        ensure_not_member(Membership(PID, "u", Role.VIEWER, T0))


@pytest.mark.parametrize("new_role", [Role.EDITOR, Role.VIEWER, None])
def test_last_owner_stays(new_role: Role | None) -> None:
    owner = Membership(PID, "u", Role.OWNER, T0)
    with pytest.raises(Conflict):
        ensure_owner_remains(owner, new_role, owner_count=1)
    ensure_owner_remains(owner, new_role, owner_count=2)
    ensure_owner_remains(owner, Role.OWNER, owner_count=1)
    ensure_owner_remains(Membership(PID, "v", Role.EDITOR, T0), new_role, owner_count=1)


def test_members_order_owners_first_then_added_at() -> None:
    t = [T0 + timedelta(seconds=s) for s in range(4)]
    rows = [
        Membership(PID, "a", Role.VIEWER, t[0]),
        Membership(PID, "b", Role.OWNER, t[3]),
        Membership(PID, "c", Role.EDITOR, t[1]),
        Membership(PID, "d", Role.OWNER, t[2]),
    ]
    assert [m.user_id for m in sorted(rows, key=members_order_key)] == ["d", "b", "a", "c"]


def test_comment_body_is_kept_untrimmed() -> None:
    comment = new_comment(comment_id="c", task_id="t", author_id="a", body="  hi \n", now=T0)
    assert comment.body == "  hi \n"
    assert comment.created_at == T0
    long = new_comment(
        comment_id="c", task_id="t", author_id="a", body="b" * BODY_MAX_LENGTH, now=T0
    )
    assert len(long.body) == BODY_MAX_LENGTH


@pytest.mark.parametrize("body", ["", "b" * (BODY_MAX_LENGTH + 1), None, 5, "a\x00"])
def test_bad_comment_body(body: object) -> None:
    with pytest.raises(Invalid) as caught:
        new_comment(comment_id="c", task_id="t", author_id="a", body=body, now=T0)
    assert fields_of(caught.value) == ["body"]


def test_naive_time_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="naive"):
        new_project(project_id=PID, draft=ProjectDraft("A"), now=datetime(2026, 1, 1))
    assert new_inbox(project_id=PID, now=T0.astimezone(UTC)).created_at == T0
