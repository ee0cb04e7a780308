"""The project aggregate: `Project`, `Role`, `Membership`, and the rules for projects and members.

Every rule about a project's own fields and its member list lives here: name trimming and bounds,
description bound, the inbox (never deleted, never shared, may be renamed), and the last-owner
rule. Who may do what is the access policy's business (`domain.access`), not this module's.
A rule broken by input raises `Invalid` naming every offending field at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from domain.errors import Conflict, FieldError, FieldErrors, Invalid
from domain.tasks import as_utc
from domain.text_fields import optional_text, required_text

NAME_MAX_LENGTH = 200
DESCRIPTION_MAX_LENGTH = 20_000
INBOX_NAME = "Inbox"

EDITABLE_FIELDS = frozenset({"name", "description"})
SERVER_FIELDS = frozenset({"id", "inbox", "role", "created_at", "updated_at", "version"})


class Role(StrEnum):
    """A member's role in a project; each includes the rights of the ones below it."""

    OWNER = "owner"
    EDITOR = "editor"
    VIEWER = "viewer"

    @property
    def rank(self) -> int:
        """Viewer 1, editor 2, owner 3: a role may do what any lower rank may."""
        return _RANKS[self]

    def at_least(self, other: Role) -> bool:
        return self.rank >= other.rank


_RANKS = {Role.VIEWER: 1, Role.EDITOR: 2, Role.OWNER: 3}


@dataclass(frozen=True, slots=True)
class Project:
    """A shared container of tasks. Build it with `new_project` / `new_inbox`, change it with
    `apply_project_changes`; the constructor checks nothing (adapters rebuild stored rows)."""

    id: str
    name: str
    description: str | None
    inbox: bool
    created_at: datetime
    updated_at: datetime
    version: int


@dataclass(frozen=True, slots=True)
class ProjectDraft:
    """What a client may give when creating a project; `new_project` re-checks the types."""

    name: object
    description: object = None


@dataclass(frozen=True, slots=True)
class Membership:
    """`user_id` is a member of `project_id` with `role` since `added_at`."""

    project_id: str
    user_id: str
    role: Role
    added_at: datetime


@dataclass(frozen=True, slots=True)
class Member:
    """A membership with the user's e-mail and display name, as the members list shows it."""

    membership: Membership
    email: str
    name: str | None


@dataclass(frozen=True, slots=True)
class ProjectView:
    """A project together with the caller's role in it (what every project answer carries)."""

    project: Project
    role: Role


def _name(value: object) -> str:
    return required_text("name", value, NAME_MAX_LENGTH)


def _description(value: object) -> str | None:
    return optional_text("description", value, DESCRIPTION_MAX_LENGTH)


def new_project(*, project_id: str, draft: ProjectDraft, now: datetime) -> Project:
    """A new (non-inbox) project at version 1. Raises `Invalid` naming every offending field."""
    now = as_utc(now)
    errors = FieldErrors()
    name = errors.take("", _name, draft.name)
    description = errors.take(None, _description, draft.description)
    errors.raise_if_any("invalid project fields")
    return Project(project_id, name, description, False, now, now, 1)


def new_inbox(*, project_id: str, now: datetime) -> Project:
    """A user's inbox: named "Inbox", flagged `inbox`, at version 1."""
    now = as_utc(now)
    return Project(project_id, INBOX_NAME, None, True, now, now, 1)


def apply_project_changes(
    project: Project, changes: Mapping[str, object], now: datetime
) -> Project:
    """`project` with a JSON merge patch of `name` / `description` applied (`None` clears the
    description; `None` for the name, unknown and server-set keys are `Invalid`). An inbox may
    be renamed like any project. A patch that changes nothing returns `project` itself; else
    `version` goes up by one and `updated_at` becomes `now`."""
    now = as_utc(now)
    errors = FieldErrors()
    for key in changes:
        if key in SERVER_FIELDS:
            errors.errors.append(FieldError(key, "is set by the server and cannot be given"))
        elif key not in EDITABLE_FIELDS:
            errors.errors.append(FieldError(key, "is not a project field"))
    name, description = project.name, project.description
    if "name" in changes:
        name = errors.take(name, _name, changes["name"])
    if "description" in changes:
        description = errors.take(description, _description, changes["description"])
    errors.raise_if_any("invalid project fields")
    if name == project.name and description == project.description:
        return project
    return replace(
        project, name=name, description=description, updated_at=now, version=project.version + 1
    )


def parse_role(value: object, field: str = "role") -> Role:
    """A role name (`owner`, `editor`, `viewer`) as a `Role`; else `Invalid` on `field`."""
    if isinstance(value, str):
        try:
            return Role(value)
        except ValueError:
            pass
    allowed = ", ".join(r.value for r in Role)
    raise Invalid.of(field, f"must be one of {allowed}")


def ensure_deletable(project: Project) -> None:
    """An inbox is never deleted: `Conflict`."""
    if project.inbox:
        raise Conflict("an inbox cannot be deleted")


def ensure_shareable(project: Project) -> None:
    """An inbox has exactly one member, its user: adding anyone is a `Conflict`."""
    if project.inbox:
        raise Conflict("an inbox cannot be shared")


def ensure_not_member(existing: Membership | None) -> None:
    """Adding someone who is already a member is a `Conflict`."""
    if existing is not None:
        raise Conflict("this user is already a member of the project")


def ensure_owner_remains(target: Membership, new_role: Role | None, owner_count: int) -> None:
    """Demoting (`new_role` below owner) or removing (`new_role` None) the only owner is a
    `Conflict`: a project always keeps at least one owner."""
    losing_owner = target.role is Role.OWNER and (new_role is None or new_role is not Role.OWNER)
    if losing_owner and owner_count <= 1:
        if new_role is None:
            raise Conflict("the last owner cannot leave the project; make someone else owner first")
        raise Conflict("the last owner cannot be demoted; make someone else owner first")


def members_order_key(member: Membership) -> tuple[int, datetime, str]:
    """The order of a members list: owners first, then by `added_at` (then user id, so the order
    is total). Adapters reproduce it: ORDER BY (role = 'owner') DESC, added_at, user_id."""
    return (0 if member.role is Role.OWNER else 1, member.added_at, member.user_id)
