"""Events: what changed, by whom, recorded in the same transaction as the change.

An `Event` is one change of one resource (a task, a project, a member, a comment), as the API
shows it: `data` is the resource after the change (before it, for `*.deleted` and `*.purged`),
`changes` lists each changed field on `*.updated`. Use cases build events with the functions
below and record them on their unit of work (`uow.events.append(...)`), so an event commits
exactly when its change does.

Who asked and through which door (`Origin`: http or mcp, and the request id) is set by the
inbound adapter for the duration of a call (`ORIGIN`); the caller (a `Principal`) says who acted.

`TaskEvent` is the older, log-only notice the task use cases publish after commit (one log line
per change); it carries nothing the event log does not.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from functools import lru_cache
from typing import TYPE_CHECKING

from domain.auth import Principal, PrincipalKind

if TYPE_CHECKING:
    from domain.access import Caller
    from domain.comments import Comment
    from domain.projects import Member, Project
    from domain.tasks import Task


class EventType(StrEnum):
    TASK_CREATED = "task.created"
    TASK_UPDATED = "task.updated"
    TASK_DELETED = "task.deleted"
    TASK_RESTORED = "task.restored"
    TASK_PURGED = "task.purged"
    PROJECT_CREATED = "project.created"
    PROJECT_UPDATED = "project.updated"
    PROJECT_DELETED = "project.deleted"
    MEMBER_ADDED = "member.added"
    MEMBER_UPDATED = "member.updated"
    MEMBER_REMOVED = "member.removed"
    COMMENT_CREATED = "comment.created"
    COMMENT_DELETED = "comment.deleted"


class ResourceType(StrEnum):
    TASK = "task"
    PROJECT = "project"
    MEMBER = "member"
    COMMENT = "comment"


@dataclass(frozen=True, slots=True)
class Origin:
    """Through which inbound adapter a change came (`via`: "http" or "mcp") and its request id."""

    via: str = "http"
    request_id: str | None = None


# Set by the inbound adapter around each call; a change made outside one (the worker, the CLI)
# records via "system" and no request id.
ORIGIN: ContextVar[Origin | None] = ContextVar("taskhub_event_origin", default=None)
_OUTSIDE = Origin("system")


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acted: `type` user (a session), api_key or service; `id` the user, the key or
    "service"; `user_id` whose rights were used (the acting user, for a service). The worker's
    own changes (a purge) are `SYSTEM`: type and via "system", no user."""

    type: str
    id: str
    user_id: str | None
    via: str

    def to_json(self) -> dict[str, object]:
        return {"type": self.type, "id": self.id, "user_id": self.user_id, "via": self.via}


_ACTOR_TYPES = {
    PrincipalKind.SESSION: "user",
    PrincipalKind.API_KEY: "api_key",
    PrincipalKind.SERVICE: "service",
}


SYSTEM = Actor("system", "worker", None, "system")


def actor_of(caller: Caller | None, via: str) -> Actor:
    """The actor of a change made by `caller` (a `Principal`; any other caller is a user;
    None: the system itself, e.g. the worker's purge)."""
    if caller is None:
        return SYSTEM
    if isinstance(caller, Principal):
        kind = _ACTOR_TYPES[caller.kind]
        actor_id = caller.user_id if kind == "user" else caller.credential_id
        return Actor(kind, actor_id, caller.user_id, via)
    return Actor("user", caller.user_id, caller.user_id, via)


def _time(value: datetime | None) -> str | None:
    """RFC 3339 in UTC ending in `Z`, as the API writes times."""
    if value is None:
        return None
    return _utc_text(value)


@lru_cache(maxsize=256)
def _utc_text(value: datetime) -> str:
    # Cached: one change writes the same instant several times (created, updated, occurred).
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def task_data(task: Task) -> dict[str, object]:
    """A task as the API shows it (the task body of `GET /v1/tasks/{id}`)."""
    return {
        "id": task.id,
        "title": task.title,
        "description": task.description,
        "status": task.status.value,
        "priority": task.priority,
        "labels": list(task.labels),
        "due_at": _time(task.due_at),
        "completed_at": _time(task.completed_at),
        "created_at": _time(task.created_at),
        "updated_at": _time(task.updated_at),
        "version": task.version,
        "project_id": task.project_id,
        "parent_id": task.parent_id,
        "assignee_id": task.assignee_id,
    }


def project_data(project: Project) -> dict[str, object]:
    """A project as the API shows it, without `role` (each reader's own)."""
    return {
        "id": project.id,
        "name": project.name,
        "description": project.description,
        "inbox": project.inbox,
        "created_at": _time(project.created_at),
        "updated_at": _time(project.updated_at),
        "version": project.version,
    }


def member_data(member: Member) -> dict[str, object]:
    return {
        "user_id": member.membership.user_id,
        "email": member.email,
        "name": member.name,
        "role": member.membership.role.value,
        "added_at": _time(member.membership.added_at),
    }


def comment_data(comment: Comment) -> dict[str, object]:
    return {
        "id": comment.id,
        "task_id": comment.task_id,
        "author_id": comment.author_id,
        "body": comment.body,
        "created_at": _time(comment.created_at),
    }


def changes_between(
    before: Mapping[str, object], after: Mapping[str, object], *, ignore: frozenset[str]
) -> dict[str, dict[str, object]]:
    """`{field: {"from", "to"}}` for each field whose value differs (except `ignore`)."""
    return {
        name: {"from": before.get(name), "to": value}
        for name, value in after.items()
        if name not in ignore and before.get(name) != value
    }


# Bookkeeping fields that change with every update: not listed in `changes`.
_BOOKKEEPING = frozenset({"updated_at", "version"})


@dataclass(frozen=True, slots=True)
class Event:
    """One recorded change. `audience` names users who see it in their change feed even when
    they can no longer read its project (a removed member, the members of a deleted project)."""

    id: str
    type: EventType
    occurred_at: datetime
    project_id: str | None
    resource_type: ResourceType
    resource_id: str
    actor: Actor
    request_id: str | None
    data: Mapping[str, object] | None
    changes: Mapping[str, object] | None = None
    audience: frozenset[str] = field(default_factory=frozenset)

    def placed_in(self, project_id: str) -> Event:
        """The event of a task created where the store put it (an inbox found by the store)."""
        data = dict(self.data or {})
        if "project_id" in data:
            data["project_id"] = project_id
        return replace(self, project_id=project_id, data=data)

    def to_json(self) -> dict[str, object]:
        """The event as the API shows it (JSON-ready)."""
        return {
            "id": self.id,
            "type": self.type.value,
            "occurred_at": _time(self.occurred_at),
            "project_id": self.project_id,
            "resource": {"type": self.resource_type.value, "id": self.resource_id},
            "actor": self.actor.to_json(),
            "request_id": self.request_id,
            "data": None if self.data is None else dict(self.data),
            "changes": None if self.changes is None else dict(self.changes),
        }


class EventMaker:
    """Builds the events of one use-case call: a new id each, the time of the change, the
    actor and origin of the call (`caller` None: the worker)."""

    def __init__(self, new_id: Callable[[], str], caller: Caller | None, at: datetime) -> None:
        origin = ORIGIN.get() or _OUTSIDE
        self._new_id = new_id
        self._actor = actor_of(caller, origin.via)
        self._request_id = origin.request_id
        self._at = at

    def _event(
        self,
        type_: EventType,
        project_id: str | None,
        resource: tuple[ResourceType, str],
        data: Mapping[str, object] | None,
        changes: Mapping[str, object] | None = None,
        audience: frozenset[str] = frozenset(),
    ) -> Event:
        return Event(
            id=self._new_id(),
            type=type_,
            occurred_at=self._at,
            project_id=project_id,
            resource_type=resource[0],
            resource_id=resource[1],
            actor=self._actor,
            request_id=self._request_id,
            data=data,
            changes=changes,
            audience=audience,
        )

    def task(self, type_: EventType, task: Task, before: Task | None = None) -> Event:
        """A task event: `task` is the task after the change (before it, for a deletion);
        with `before`, `changes` lists what differs."""
        data = task_data(task)
        changes = None
        if before is not None:
            changes = changes_between(task_data(before), data, ignore=_BOOKKEEPING)
        return self._event(type_, task.project_id, (ResourceType.TASK, task.id), data, changes)

    def project(
        self,
        type_: EventType,
        project: Project,
        before: Project | None = None,
        audience: frozenset[str] = frozenset(),
    ) -> Event:
        data = project_data(project)
        changes = None
        if before is not None:
            changes = changes_between(project_data(before), data, ignore=_BOOKKEEPING)
        return self._event(
            type_, project.id, (ResourceType.PROJECT, project.id), data, changes, audience
        )

    def member(self, type_: EventType, member: Member, before: Member | None = None) -> Event:
        data = member_data(member)
        changes = None
        if before is not None:
            changes = changes_between(member_data(before), data, ignore=frozenset())
        user_id = member.membership.user_id
        audience = frozenset({user_id}) if type_ is EventType.MEMBER_REMOVED else frozenset()
        return self._event(
            type_,
            member.membership.project_id,
            (ResourceType.MEMBER, user_id),
            data,
            changes,
            audience,
        )

    def comment(self, type_: EventType, comment: Comment, project_id: str) -> Event:
        return self._event(
            type_, project_id, (ResourceType.COMMENT, comment.id), comment_data(comment)
        )


class TaskEventName(StrEnum):
    CREATED = "task.created"
    UPDATED = "task.updated"
    DELETED = "task.deleted"  # to the trash
    RESTORED = "task.restored"
    PURGED = "task.purged"  # gone for good


@dataclass(frozen=True, slots=True)
class TaskEvent:
    """Something that happened to a task; `version` is the task's version after the change
    (for a deletion: the version that was deleted)."""

    name: TaskEventName
    task_id: str
    owner_id: str
    occurred_at: datetime
    version: int
