"""The access policy: who may read, write and manage a project and what is in it.

One object decides for every use case (and, through them, every adapter). The order of checks,
and the answer each gives:
1. the credential lacks the action's scope                       -> Forbidden (403)
2. a restricted key does not list the project                    -> NotFound (404)
3. the caller is not a member of the project                     -> NotFound (404)
4. the caller's role is too low for the action                   -> Forbidden (403)
A missing scope answers the same for every id, so checking it first reveals nothing; a project the
caller cannot reach is indistinguishable from one that does not exist. The role used is the one
read in the same transaction as the action, so a key's rights follow its user's role at use time.
"""

from __future__ import annotations

from collections.abc import Iterable, Set
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from domain.auth import Scope
from domain.errors import FieldError, Forbidden, Invalid, NotFound
from domain.projects import Membership, Role

MAX_KEY_PROJECTS = 50


class Caller(Protocol):
    """What the policy needs to know of an authenticated caller (`domain.auth.Principal` fits).
    `project_ids` is None for an unrestricted credential, else the projects a key may reach."""

    @property
    def user_id(self) -> str: ...

    @property
    def scopes(self) -> Set[str]: ...

    @property
    def project_ids(self) -> Set[str] | None: ...


class Action(StrEnum):
    """Something a caller does inside one project."""

    READ_PROJECT = "read_project"  # the project itself and its member list
    READ_TASKS = "read_tasks"  # tasks, comments, trash, activity
    WRITE_TASKS = "write_tasks"  # create, change, move, delete, restore tasks
    WRITE_COMMENTS = "write_comments"
    DELETE_OWN_COMMENT = "delete_own_comment"
    DELETE_ANY_COMMENT = "delete_any_comment"
    MANAGE_PROJECT = "manage_project"  # rename, describe, delete the project
    MANAGE_MEMBERS = "manage_members"  # add, change the role of, remove another member
    LEAVE = "leave"  # remove oneself


@dataclass(frozen=True, slots=True)
class _Rule:
    scope: str
    role: Role


_RULES: dict[Action, _Rule] = {
    Action.READ_PROJECT: _Rule(Scope.PROJECTS_READ, Role.VIEWER),
    Action.READ_TASKS: _Rule(Scope.TASKS_READ, Role.VIEWER),
    Action.WRITE_TASKS: _Rule(Scope.TASKS_WRITE, Role.EDITOR),
    Action.WRITE_COMMENTS: _Rule(Scope.TASKS_WRITE, Role.EDITOR),
    Action.DELETE_OWN_COMMENT: _Rule(Scope.TASKS_WRITE, Role.EDITOR),
    Action.DELETE_ANY_COMMENT: _Rule(Scope.TASKS_WRITE, Role.OWNER),
    Action.MANAGE_PROJECT: _Rule(Scope.PROJECTS_WRITE, Role.OWNER),
    Action.MANAGE_MEMBERS: _Rule(Scope.PROJECTS_WRITE, Role.OWNER),
    Action.LEAVE: _Rule(Scope.PROJECTS_WRITE, Role.VIEWER),
}


def project_not_found(project_id: str) -> NotFound:
    return NotFound(f"project {project_id!r} not found")


def require_scope(caller: Caller, scope: str) -> None:
    """Forbidden unless the credential holds `scope`."""
    if scope not in caller.scopes:
        raise Forbidden(f"this credential lacks the {scope} scope")


def reaches(caller: Caller, project_id: str) -> bool:
    """Whether the credential may reach `project_id` at all (a restricted key: only its list)."""
    return caller.project_ids is None or project_id in caller.project_ids


def is_restricted(caller: Caller) -> bool:
    return caller.project_ids is not None


class AccessPolicy:
    """Decides every project-scoped permission. Stateless: one shared instance, `POLICY`."""

    def require(
        self,
        caller: Caller,
        project_id: str,
        membership: Membership | None,
        action: Action,
        *,
        not_found: NotFound | None = None,
    ) -> Membership:
        """The caller's membership when it may do `action` in `project_id`; else Forbidden or
        NotFound in the module's order. `membership` is the caller's own, read by the use case
        (None when not a member). `not_found` replaces the default error, so that e.g. a task in
        an unreachable project answers "task not found" without naming the project."""
        rule = _RULES[action]
        require_scope(caller, rule.scope)
        if (
            not reaches(caller, project_id)
            or membership is None
            or membership.project_id != project_id
            or membership.user_id != caller.user_id
        ):
            raise not_found or project_not_found(project_id)
        if not membership.role.at_least(rule.role):
            raise Forbidden(f"{action.value} needs the {rule.role.value} role or higher")
        return membership

    def required_roles(
        self,
        caller: Caller,
        project_id: str | None,
        action: Action,
        *,
        not_found: NotFound | None = None,
    ) -> frozenset[Role]:
        """Steps 1 and 2 of `require` (scope, then the key's reach; `project_id` None is the
        caller's own inbox, see `task_project_for_create`), and the roles step 4 will accept:
        for a write that checks the membership in the same statement that acts. When it does
        not act, `require` on the membership read afterwards gives the answer."""
        require_scope(caller, _RULES[action].scope)
        if project_id is not None and not reaches(caller, project_id):
            raise not_found or project_not_found(project_id)
        return self.roles_allowing(action)

    def roles_allowing(self, action: Action) -> frozenset[Role]:
        """The roles that may do `action` (for a query that reads only what a caller may)."""
        needed = _RULES[action].role
        return frozenset(role for role in Role if role.at_least(needed))

    def allows(self, caller: Caller, membership: Membership | None, action: Action) -> bool:
        """Whether `require` would pass (for showing, never for deciding twice)."""
        if membership is None:
            return False
        try:
            self.require(caller, membership.project_id, membership, action)
        except (Forbidden, NotFound):
            return False
        return True

    def require_delete_comment(
        self,
        caller: Caller,
        project_id: str,
        membership: Membership | None,
        author_id: str,
        *,
        not_found: NotFound | None = None,
    ) -> None:
        """A comment may be deleted by its author (editor or owner, still a member) or by any
        owner of the project."""
        own = author_id == caller.user_id
        action = Action.DELETE_OWN_COMMENT if own else Action.DELETE_ANY_COMMENT
        self.require(caller, project_id, membership, action, not_found=not_found)

    def require_remove_member(
        self,
        caller: Caller,
        project_id: str,
        membership: Membership | None,
        target_user_id: str,
    ) -> None:
        """Removing oneself is leaving (any role); removing someone else needs an owner."""
        action = Action.LEAVE if target_user_id == caller.user_id else Action.MANAGE_MEMBERS
        self.require(caller, project_id, membership, action)

    def require_move(
        self,
        caller: Caller,
        source_id: str,
        source: Membership | None,
        target_id: str,
        target: Membership | None,
        *,
        not_found: NotFound | None = None,
    ) -> None:
        """Moving a task between projects needs `WRITE_TASKS` in both: the task's own project
        answers with `not_found` (the task's error), the target project as itself (404 when
        the caller is not a member or its key does not reach it, 403 for a viewer)."""
        self.require(caller, source_id, source, Action.WRITE_TASKS, not_found=not_found)
        self.require(caller, target_id, target, Action.WRITE_TASKS)

    def require_create_project(self, caller: Caller) -> None:
        """Any user may create projects with `projects:write`, but not through a key restricted
        to projects (it could not reach the project it made)."""
        require_scope(caller, Scope.PROJECTS_WRITE)
        if is_restricted(caller):
            raise Forbidden("a key restricted to projects cannot create projects")

    def require_list_projects(self, caller: Caller) -> None:
        require_scope(caller, Scope.PROJECTS_READ)

    def visible(self, caller: Caller, project_ids: Iterable[str]) -> list[str]:
        """Of the projects the caller is a member of, those its credential reaches (for lists:
        a restricted key's lists cover only its projects)."""
        return [p for p in project_ids if reaches(caller, p)]

    def task_project_for_create(
        self, caller: Caller, project_id: str | None, inbox_id: str | None
    ) -> str | None:
        """Where a new task goes: the named project, else the caller's inbox (`inbox_id`, or
        None when the caller has not looked it up yet). A restricted key must name one
        (`Invalid` on `project_id`). The caller still needs `WRITE_TASKS` there."""
        if project_id is not None:
            return project_id
        if is_restricted(caller):
            raise Invalid.of("project_id", "is required for a key restricted to projects")
        return inbox_id

    def key_project_ids(
        self, issuer: Caller, requested: object, member_of: Set[str]
    ) -> frozenset[str] | None:
        """The `project_ids` of a key `issuer` asks for: None (unrestricted) or 1-50 ids of
        projects the issuer's user is a member of (`member_of`); each bad entry is `Invalid` on
        `project_ids[i]`. A restricted issuer may only issue keys restricted to a subset of its
        own projects (`Forbidden` otherwise, an unrestricted key included)."""
        if requested is None:
            if is_restricted(issuer):
                raise Forbidden("a key restricted to projects can only issue restricted keys")
            return None
        if isinstance(requested, str | bytes) or not isinstance(requested, list | tuple):
            raise Invalid.of("project_ids", "must be a list of project ids or null")
        if not 1 <= len(requested) <= MAX_KEY_PROJECTS:
            raise Invalid.of("project_ids", f"must list 1 to {MAX_KEY_PROJECTS} project ids")
        errors: list[FieldError] = []
        for index, item in enumerate(requested):
            if not isinstance(item, str) or item not in member_of:
                errors.append(
                    FieldError(f"project_ids[{index}]", "is not a project you are a member of")
                )
        if errors:
            fields = ", ".join(e.field for e in errors)
            raise Invalid(f"invalid key fields: {fields}", errors)
        chosen = frozenset(str(item) for item in requested)
        if issuer.project_ids is not None and not chosen <= issuer.project_ids:
            raise Forbidden("a restricted key can only issue keys for a subset of its projects")
        return chosen


POLICY = AccessPolicy()
