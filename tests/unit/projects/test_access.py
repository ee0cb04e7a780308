"""The access policy on its own: every action against every role and credential."""

from __future__ import annotations

import pytest

from domain.access import POLICY, Action
from domain.auth import Principal, PrincipalKind, Scope
from domain.errors import Forbidden, Invalid, NotFound
from domain.projects import Membership, Role
from tests.unit.projects.support import ALL, READ_ONLY, TASKS_ONLY, Who
from tests.unit.tasks.fakes import T0

P, Q, ME = "project-p", "project-q", "user-me"

# The lowest role each action needs, and the scope it needs.
NEEDS: dict[Action, tuple[Role, str]] = {
    Action.READ_PROJECT: (Role.VIEWER, Scope.PROJECTS_READ),
    Action.READ_TASKS: (Role.VIEWER, Scope.TASKS_READ),
    Action.WRITE_TASKS: (Role.EDITOR, Scope.TASKS_WRITE),
    Action.WRITE_COMMENTS: (Role.EDITOR, Scope.TASKS_WRITE),
    Action.DELETE_OWN_COMMENT: (Role.EDITOR, Scope.TASKS_WRITE),
    Action.DELETE_ANY_COMMENT: (Role.OWNER, Scope.TASKS_WRITE),
    Action.MANAGE_PROJECT: (Role.OWNER, Scope.PROJECTS_WRITE),
    Action.MANAGE_MEMBERS: (Role.OWNER, Scope.PROJECTS_WRITE),
    Action.LEAVE: (Role.VIEWER, Scope.PROJECTS_WRITE),
}


def member(role: Role, project: str = P, user: str = ME) -> Membership:
    return Membership(project, user, role, T0)


def test_every_action_has_a_rule() -> None:
    assert set(NEEDS) == set(Action)


@pytest.mark.parametrize("action", list(Action))
@pytest.mark.parametrize("role", list(Role))
def test_role_matrix(action: Action, role: Role) -> None:
    lowest, _ = NEEDS[action]
    caller = Who(ME)
    if role.at_least(lowest):
        assert POLICY.require(caller, P, member(role), action) == member(role)
        assert POLICY.allows(caller, member(role), action)
    else:
        with pytest.raises(Forbidden):
            POLICY.require(caller, P, member(role), action)
        assert not POLICY.allows(caller, member(role), action)


@pytest.mark.parametrize("action", list(Action))
def test_non_member_is_not_found_never_forbidden(action: Action) -> None:
    with pytest.raises(NotFound, match="project"):
        POLICY.require(Who(ME), P, None, action)
    # A membership of another project or another user does not count.
    with pytest.raises(NotFound):
        POLICY.require(Who(ME), P, member(Role.OWNER, project=Q), action)
    with pytest.raises(NotFound):
        POLICY.require(Who(ME), P, member(Role.OWNER, user="someone-else"), action)


@pytest.mark.parametrize("action", list(Action))
def test_restricted_key(action: Action) -> None:
    inside = Who(ME, project_ids=frozenset({P}))
    outside = Who(ME, project_ids=frozenset({Q}))
    POLICY.require(inside, P, member(Role.OWNER), action)
    with pytest.raises(NotFound):
        POLICY.require(outside, P, member(Role.OWNER), action)
    # Its rights are its user's role, read at use time.
    lowest, _ = NEEDS[action]
    if lowest is not Role.VIEWER:
        with pytest.raises(Forbidden):
            POLICY.require(inside, P, member(Role.VIEWER), action)


@pytest.mark.parametrize("action", list(Action))
def test_missing_scope_is_forbidden_before_anything_else(action: Action) -> None:
    _, scope = NEEDS[action]
    lacking = Who(ME, scopes=ALL - {scope})
    for membership in (member(Role.OWNER), None):
        with pytest.raises(Forbidden, match=scope):
            POLICY.require(lacking, P, membership, action)


def test_custom_not_found_hides_the_project() -> None:
    error = NotFound("task 't' not found")
    with pytest.raises(NotFound) as caught:
        POLICY.require(Who(ME), P, None, Action.READ_TASKS, not_found=error)
    assert caught.value is error


def test_comment_deletion() -> None:
    me = Who(ME)
    POLICY.require_delete_comment(me, P, member(Role.EDITOR), author_id=ME)
    POLICY.require_delete_comment(me, P, member(Role.OWNER), author_id="other")
    with pytest.raises(Forbidden):
        POLICY.require_delete_comment(me, P, member(Role.EDITOR), author_id="other")
    with pytest.raises(Forbidden):
        POLICY.require_delete_comment(me, P, member(Role.VIEWER), author_id=ME)
    with pytest.raises(NotFound):
        POLICY.require_delete_comment(me, P, None, author_id=ME)


def test_member_removal() -> None:
    me = Who(ME)
    POLICY.require_remove_member(me, P, member(Role.VIEWER), ME)
    POLICY.require_remove_member(me, P, member(Role.OWNER), "other")
    with pytest.raises(Forbidden):
        POLICY.require_remove_member(me, P, member(Role.EDITOR), "other")
    with pytest.raises(NotFound):
        POLICY.require_remove_member(me, P, None, ME)


def test_creating_projects() -> None:
    POLICY.require_create_project(Who(ME))
    with pytest.raises(Forbidden, match="restricted"):
        POLICY.require_create_project(Who(ME, project_ids=frozenset({P})))
    for scopes in (TASKS_ONLY, READ_ONLY):
        with pytest.raises(Forbidden, match="projects:write"):
            POLICY.require_create_project(Who(ME, scopes=scopes))
    POLICY.require_list_projects(Who(ME, scopes=READ_ONLY))
    with pytest.raises(Forbidden):
        POLICY.require_list_projects(Who(ME, scopes=TASKS_ONLY))


def test_visible_projects_of_a_restricted_key() -> None:
    assert POLICY.visible(Who(ME), [P, Q]) == [P, Q]
    assert POLICY.visible(Who(ME, project_ids=frozenset({Q})), [P, Q]) == [Q]


def test_project_of_a_new_task() -> None:
    assert POLICY.task_project_for_create(Who(ME), None, "inbox") == "inbox"
    assert POLICY.task_project_for_create(Who(ME), P, "inbox") == P
    restricted = Who(ME, project_ids=frozenset({P}))
    assert POLICY.task_project_for_create(restricted, P, "inbox") == P
    with pytest.raises(Invalid) as caught:
        POLICY.task_project_for_create(restricted, None, "inbox")
    assert [e.field for e in caught.value.errors] == ["project_id"]


def test_a_principal_is_a_caller() -> None:
    key = Principal(
        ME, PrincipalKind.API_KEY, frozenset(Scope), "key-1", "api_key:key-1", frozenset({P})
    )
    POLICY.require(key, P, member(Role.OWNER), Action.WRITE_TASKS)
    with pytest.raises(NotFound):
        POLICY.require(key, Q, member(Role.OWNER, project=Q), Action.READ_TASKS)
    session = Principal(ME, PrincipalKind.SESSION, frozenset(Scope), "s", "user:me")
    assert session.project_ids is None
    POLICY.require(session, Q, member(Role.OWNER, project=Q), Action.READ_TASKS)


MINE = frozenset({P, Q})


def test_key_project_ids() -> None:
    assert POLICY.key_project_ids(Who(ME), None, MINE) is None
    assert POLICY.key_project_ids(Who(ME), [P, P], MINE) == frozenset({P})
    restricted = Who(ME, project_ids=frozenset({P}))
    assert POLICY.key_project_ids(restricted, [P], MINE) == frozenset({P})
    with pytest.raises(Forbidden):
        POLICY.key_project_ids(restricted, [P, Q], MINE)
    with pytest.raises(Forbidden):
        POLICY.key_project_ids(restricted, None, MINE)


@pytest.mark.parametrize(
    ("requested", "fields"),
    [
        ([], ["project_ids"]),
        ([P] * 51, ["project_ids"]),
        ("p", ["project_ids"]),
        ({"a": 1}, ["project_ids"]),
        ([P, "foreign", Q, 3], ["project_ids[1]", "project_ids[3]"]),
    ],
)
def test_bad_key_project_ids(requested: object, fields: list[str]) -> None:
    with pytest.raises(Invalid) as caught:
        POLICY.key_project_ids(Who(ME), requested, MINE)
    assert [e.field for e in caught.value.errors] == fields


def test_moving_needs_write_in_both_projects() -> None:
    me = Who(ME)
    in_p, in_q = member(Role.EDITOR), member(Role.OWNER, project=Q)
    POLICY.require_move(me, P, in_p, Q, in_q)
    task_gone = NotFound("task 't' not found")
    with pytest.raises(NotFound) as caught:
        POLICY.require_move(me, P, None, Q, in_q, not_found=task_gone)
    assert caught.value is task_gone
    with pytest.raises(Forbidden):
        POLICY.require_move(me, P, member(Role.VIEWER), Q, in_q)
    with pytest.raises(Forbidden):
        POLICY.require_move(me, P, in_p, Q, member(Role.VIEWER, project=Q))
    with pytest.raises(NotFound, match="project"):
        POLICY.require_move(me, P, in_p, Q, None)
    with pytest.raises(NotFound, match="project"):
        POLICY.require_move(Who(ME, project_ids=frozenset({P})), P, in_p, Q, in_q)


def test_required_roles_checks_scope_and_reach_first() -> None:
    assert POLICY.required_roles(Who(ME), P, Action.WRITE_TASKS) == {Role.OWNER, Role.EDITOR}
    assert POLICY.required_roles(Who(ME), P, Action.READ_TASKS) == set(Role)
    with pytest.raises(Forbidden):
        POLICY.required_roles(Who(ME, scopes=frozenset({"tasks:read"})), P, Action.WRITE_TASKS)
    with pytest.raises(NotFound, match="project"):
        POLICY.required_roles(Who(ME, project_ids=frozenset({Q})), P, Action.WRITE_TASKS)
    for role in Role:
        allowed = role in POLICY.required_roles(Who(ME), P, Action.WRITE_TASKS)
        assert allowed == POLICY.allows(Who(ME), member(role), Action.WRITE_TASKS)
