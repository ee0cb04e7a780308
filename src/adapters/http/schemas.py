"""The wire format: msgspec Structs for request and response bodies, the public contract.

Requests forbid unknown fields (server-set fields such as `id` or `version` included), so a typo
is a 422 rather than a silently ignored value. Rules beyond types (lengths after trimming, label
normalisation, ...) live in the domain, which names every offending field.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from domain.access import MAX_KEY_PROJECTS
from domain.auth import Scope
from domain.comments import BODY_MAX_LENGTH
from domain.projects import DESCRIPTION_MAX_LENGTH, NAME_MAX_LENGTH, Role
from domain.task_queries import MAX_PAGE_SIZE, Q_MAX_LENGTH, TaskSort
from domain.use_cases.events import (
    DEFAULT_ACTIVITY_PAGE,
    DEFAULT_FEED_PAGE,
    MAX_ACTIVITY_PAGE,
    MAX_FEED_PAGE,
)
from domain.use_cases.projects import DEFAULT_COMMENT_PAGE, MAX_COMMENT_PAGE

StatusText = Literal["todo", "in_progress", "done"]
Priority = Annotated[int, Meta(ge=1, le=4, description="1 (normal) to 4 (urgent)")]
# The scope names are the domain's one list: the schema's enum is made from it.
ScopeText = Scope
# A time in a request: RFC 3339 with an offset. The format is for the OpenAPI text only; the
# domain refuses a time without an offset and names the field.
Time = Annotated[datetime, Meta(extra_json_schema={"format": "date-time"})]
Id = Annotated[str, Meta(extra_json_schema={"format": "uuid"})]
_UUID_PATTERN = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
ProjectRef = Annotated[
    Id,
    Meta(description="A project where the caller is an editor or owner (default: the inbox)."),
]
ParentRef = Annotated[
    Id, Meta(description="A task of the same project; at most 5 levels deep, no cycle.")
]
AssigneeRef = Annotated[Id, Meta(description="A member (any role) of the task's project.")]


class Request(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Base of request bodies: unknown fields are rejected."""


# --- users and sessions ----------------------------------------------------------------------


class UserCreate(Request):
    email: Annotated[str, Meta(description="A valid e-mail address; unique, case-insensitive.")]
    password: Annotated[
        str,
        Meta(
            description="8 to 128 characters after Unicode NFKC normalisation; not one of the "
            "most common passwords."
        ),
    ]
    name: Annotated[str | None, Meta(description="Display name, 1 to 200 characters.")] = None


class UserOut(msgspec.Struct, kw_only=True):
    id: str
    email: str
    name: str | None
    created_at: datetime


class SessionCreate(Request):
    email: str
    password: str


class SessionOut(msgspec.Struct, kw_only=True):
    token: Annotated[str, Meta(description="Bearer token; shown only here.")]
    expires_at: datetime
    user: UserOut


# --- API keys --------------------------------------------------------------------------------


class ApiKeyCreate(Request):
    name: Annotated[str, Meta(description="1 to 100 characters.")]
    scopes: Annotated[list[ScopeText], Meta(min_length=1)]
    expires_at: Annotated[
        Time | None,
        Meta(
            description="Expiry, in the future (RFC 3339 with offset). Optional, except when the "
            "issuing key expires: then required and no later than the issuer's."
        ),
    ] = None
    project_ids: Annotated[
        Annotated[list[str], Meta(min_length=1, max_length=MAX_KEY_PROJECTS)] | None,
        Meta(
            description="Restrict the key to these projects (1 to 50 ids of projects you are a "
            "member of). A key restricted to projects may only issue keys restricted to a "
            "subset of its own. Null or absent: every project of the user.",
        ),
    ] = None


class ApiKeyOut(msgspec.Struct, kw_only=True):
    id: str
    name: str
    prefix: Annotated[str, Meta(description="The key's first characters, to recognise it.")]
    scopes: list[ScopeText]
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    created_by_key_id: Annotated[
        str | None,
        Meta(description="The key that issued this one; null when a session or the CLI did."),
    ]
    project_ids: Annotated[
        list[str] | None,
        Meta(description="The projects the key may reach; null for an unrestricted key."),
    ]


class ApiKeyCreated(ApiKeyOut, kw_only=True):
    key: Annotated[str, Meta(description="The secret key (thk_...); shown only in this answer.")]


class KeyListQuery(msgspec.Struct, kw_only=True):
    """The query parameters of `GET /v1/api-keys`, as the OpenAPI text describes them (the
    handler parses them itself, to name the offending one in a 422)."""

    limit: Annotated[int, Meta(ge=1, le=200)] = 50
    cursor: Annotated[str | None, Meta(description="next_cursor of the previous page.")] = None


class ApiKeyList(msgspec.Struct, kw_only=True):
    items: list[ApiKeyOut]
    next_cursor: Annotated[
        str | None, Meta(description="Pass as `cursor` for the next page; null on the last.")
    ]


# --- tasks -----------------------------------------------------------------------------------


class TaskCreate(Request):
    title: Annotated[str, Meta(description="1 to 500 characters after trimming.")]
    description: Annotated[str | None, Meta(description="Up to 20,000 characters.")] = None
    status: StatusText = "todo"
    priority: Priority = 1
    labels: Annotated[
        list[str],
        Meta(description="Up to 20 labels of 1 to 50 characters; trimmed, duplicates merged."),
    ] = msgspec.field(default_factory=list)
    due_at: Time | None = None
    project_id: ProjectRef | None = None
    parent_id: ParentRef | None = None
    assignee_id: AssigneeRef | None = None


class TaskPatch(Request):
    """JSON merge patch (RFC 7396): absent fields stay, `null` clears a nullable field."""

    title: str | UnsetType = UNSET
    description: str | UnsetType | None = UNSET
    status: StatusText | UnsetType = UNSET
    priority: Priority | UnsetType = UNSET
    labels: list[str] | UnsetType = UNSET
    due_at: Time | UnsetType | None = UNSET
    project_id: ProjectRef | UnsetType = UNSET
    parent_id: ParentRef | UnsetType | None = UNSET
    assignee_id: AssigneeRef | UnsetType | None = UNSET


class TaskOut(msgspec.Struct, kw_only=True):
    id: str
    title: str
    description: str | None
    status: StatusText
    priority: int
    labels: list[str]
    due_at: datetime | None
    completed_at: datetime | None
    created_at: datetime
    updated_at: datetime
    version: int
    project_id: str
    parent_id: str | None
    assignee_id: str | None


class TaskPage(msgspec.Struct, kw_only=True):
    items: list[TaskOut]
    next_cursor: str | None


class TaskListQuery(msgspec.Struct, kw_only=True):
    """The query parameters of `GET /v1/tasks`, as the OpenAPI text describes them (the handler
    parses them itself, to name each offending one in a 422)."""

    status: StatusText | None = None
    priority: Priority | None = None
    label: Annotated[list[str] | None, Meta(description="Repeatable; every label must match.")] = (
        None
    )
    due_before: Annotated[Time | None, Meta(description="due_at before this time.")] = None
    due_after: Annotated[Time | None, Meta(description="due_at at or after this time.")] = None
    q: Annotated[
        str | None,
        Meta(description=f"Text in title or description, 1 to {Q_MAX_LENGTH} characters."),
    ] = None
    sort: TaskSort = TaskSort.CREATED_AT_DESC
    limit: Annotated[int, Meta(ge=1, le=MAX_PAGE_SIZE)] = 50
    cursor: Annotated[str | None, Meta(description="next_cursor of the previous page.")] = None
    project_id: Annotated[
        Id | None,
        Meta(description="Only this project's tasks (one the caller cannot read: none)."),
    ] = None
    assignee_id: (
        Annotated[
            str,
            Meta(
                pattern=f"^(me|none|{_UUID_PATTERN})$",
                description="A user id, `me` (the caller) or `none` (unassigned).",
            ),
        ]
        | None
    ) = None
    parent_id: (
        Annotated[
            str,
            Meta(
                pattern=f"^(none|{_UUID_PATTERN})$",
                description="A task id (its direct subtasks) or `none` (top level).",
            ),
        ]
        | None
    ) = None


# --- projects, members, comments -------------------------------------------------------------

# A member's role: the domain's list, as an enum in the schema.
RoleText = Role


class ProjectCreate(Request):
    name: Annotated[str, Meta(description=f"1 to {NAME_MAX_LENGTH} characters after trimming.")]
    description: Annotated[
        str | None, Meta(description=f"Up to {DESCRIPTION_MAX_LENGTH:,} characters.")
    ] = None


class ProjectPatch(Request):
    """JSON merge patch (RFC 7396): absent fields stay, `null` clears the description."""

    name: str | UnsetType = UNSET
    description: str | UnsetType | None = UNSET


class ProjectOut(msgspec.Struct, kw_only=True):
    id: str
    name: str
    description: str | None
    inbox: Annotated[bool, Meta(description="The caller's inbox: never deleted nor shared.")]
    role: Annotated[RoleText, Meta(description="The caller's role in the project.")]
    created_at: datetime
    updated_at: datetime
    version: int


class ProjectList(msgspec.Struct, kw_only=True):
    items: list[ProjectOut]


class MemberCreate(Request):
    email: Annotated[str, Meta(description="The e-mail address of an existing user.")]
    role: RoleText


class MemberPatch(Request):
    role: RoleText


class MemberOut(msgspec.Struct, kw_only=True):
    user_id: str
    email: str
    name: str | None
    role: RoleText
    added_at: datetime


class MemberList(msgspec.Struct, kw_only=True):
    items: list[MemberOut]


class CommentCreate(Request):
    body: Annotated[
        str, Meta(description=f"1 to {BODY_MAX_LENGTH:,} characters, kept as given (not trimmed).")
    ]


class CommentOut(msgspec.Struct, kw_only=True):
    id: str
    task_id: str
    author_id: str
    body: str
    created_at: datetime


class CommentListQuery(msgspec.Struct, kw_only=True):
    """The query parameters of `GET /v1/tasks/{id}/comments`, as the OpenAPI text describes them
    (the handler parses them itself, to name the offending one in a 422)."""

    limit: Annotated[int, Meta(ge=1, le=MAX_COMMENT_PAGE)] = DEFAULT_COMMENT_PAGE
    cursor: Annotated[str | None, Meta(description="next_cursor of the previous page.")] = None


class CommentPage(msgspec.Struct, kw_only=True):
    items: list[CommentOut]
    next_cursor: Annotated[
        str | None, Meta(description="Pass as `cursor` for the next page; null on the last.")
    ]


# --- events --------------------------------------------------------------------------------------

EventTypeText = Literal[
    "task.created",
    "task.updated",
    "task.deleted",
    "task.restored",
    "task.purged",
    "project.created",
    "project.updated",
    "project.deleted",
    "member.added",
    "member.updated",
    "member.removed",
    "comment.created",
    "comment.deleted",
]


class EventResource(msgspec.Struct, kw_only=True):
    type: Literal["task", "project", "member", "comment"]
    id: Annotated[str, Meta(description="The resource's id (a member: the user's id).")]


class EventActor(msgspec.Struct, kw_only=True):
    type: Annotated[
        Literal["user", "api_key", "service", "system"],
        Meta(description="user (a session), api_key, service; system for the worker."),
    ]
    id: Annotated[str, Meta(description="The user's, the key's id, or `service`.")]
    user_id: Annotated[
        str | None, Meta(description="Whose rights the change used (null for the system).")
    ]
    via: Literal["http", "mcp", "system"]


class EventOut(msgspec.Struct, kw_only=True):
    id: str
    type: EventTypeText
    occurred_at: datetime
    project_id: str | None
    resource: EventResource
    actor: EventActor
    request_id: str | None
    data: Annotated[
        dict[str, object] | None,
        Meta(description="The resource after the change (before it, for *.deleted, *.purged)."),
    ]
    changes: Annotated[
        dict[str, object] | None,
        Meta(description='On *.updated: {field: {"from": ..., "to": ...}} per changed field.'),
    ]


class ActivityQuery(msgspec.Struct, kw_only=True):
    """The query parameters of the activity lists, as the OpenAPI text describes them (the
    handler parses them itself)."""

    limit: Annotated[int, Meta(ge=1, le=MAX_ACTIVITY_PAGE)] = DEFAULT_ACTIVITY_PAGE
    cursor: Annotated[str | None, Meta(description="next_cursor of the previous page.")] = None


class ActivityPage(msgspec.Struct, kw_only=True):
    items: list[EventOut]
    next_cursor: Annotated[
        str | None, Meta(description="Pass as `cursor` for the next page; null on the last.")
    ]


class ChangesQuery(msgspec.Struct, kw_only=True):
    """The query parameters of `GET /v1/changes` (and its stream)."""

    after: Annotated[
        str | None,
        Meta(
            description="A `next_cursor` (or a stream event's id), or `now`; "
            "absent: from the oldest kept event."
        ),
    ] = None
    limit: Annotated[int, Meta(ge=1, le=MAX_FEED_PAGE)] = DEFAULT_FEED_PAGE


class ChangesPage(msgspec.Struct, kw_only=True):
    items: list[EventOut]
    next_cursor: Annotated[
        str, Meta(description="Never null: pass it as `after` next time, also after no items.")
    ]


# One query Struct per operation (the OpenAPI text inlines each one's fields there).
class TaskActivityQuery(ActivityQuery, kw_only=True):
    pass


class ProjectActivityQuery(ActivityQuery, kw_only=True):
    pass


class ChangesStreamQuery(msgspec.Struct, kw_only=True):
    """The query parameters of `GET /v1/changes/stream`."""

    after: Annotated[
        str | None,
        Meta(description="A cursor or `now` (Last-Event-ID wins when both are given)."),
    ] = None
