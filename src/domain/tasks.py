"""The task aggregate: the `Task` entity and the rules for creating and changing one.

Every rule lives here: title trimming and bounds, description bound, priority range, label
normalisation, `completed_at` following `status`, the `version` bump on each real change, and
the cap on how many tasks one owner holds (`TaskLimitReached`; stores count it atomically).
A rule broken by input raises `Invalid` naming every offending field at once.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Protocol

from domain.errors import FieldError, FieldErrors, FieldRejected, Invalid, LimitReached
from domain.text_fields import optional_text, required_text

TITLE_MAX_LENGTH = 500
DESCRIPTION_MAX_LENGTH = 20_000
PRIORITY_MIN = 1
PRIORITY_MAX = 4
DEFAULT_PRIORITY = 1
LABEL_MAX_LENGTH = 50
LABELS_MAX = 20
# Tasks one owner may hold at once (MAX_TASKS_PER_USER): one user must not fill the database.
DEFAULT_MAX_TASKS_PER_OWNER = 100_000
_NO_LABELS: tuple[str, ...] = ()

# Where a task sits: checked against the project's members and tree by the use cases
# (`domain.task_tree`, `domain.access`); here only their types.
PLACEMENT_FIELDS = frozenset({"project_id", "parent_id", "assignee_id"})
EDITABLE_FIELDS = (
    frozenset({"title", "description", "status", "priority", "labels", "due_at"}) | PLACEMENT_FIELDS
)
SERVER_FIELDS = frozenset({"id", "owner_id", "completed_at", "created_at", "updated_at", "version"})


class TaskStatus(StrEnum):
    TODO = "todo"
    IN_PROGRESS = "in_progress"
    DONE = "done"


@dataclass(frozen=True, slots=True)
class Task:
    """One task in one project. Build it with `new_task`, change it with `apply_changes`;
    the constructor itself checks nothing (adapters use it to rebuild stored rows).
    `owner_id` is who created it; who may read or change it follows from `project_id`'s
    members (`domain.access`)."""

    id: str
    owner_id: str
    project_id: str
    title: str
    description: str | None
    status: TaskStatus
    priority: int
    labels: tuple[str, ...]
    due_at: datetime | None
    completed_at: datetime | None
    created_at: datetime
    updated_at: datetime
    version: int
    parent_id: str | None = None
    assignee_id: str | None = None


class TaskLimitReached(LimitReached):
    """The owner already holds `limit` tasks, the most allowed: nothing was written."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"this account already holds {limit} tasks (those in the trash included), the most "
            "allowed; delete one for good (DELETE /v1/trash/{id}) before creating another"
        )
        self.limit = limit


@dataclass(frozen=True, slots=True)
class TaskDraft:
    """What a client may give when creating a task. Checked by `new_task`, which also
    re-checks the types at run time (so a wrong type is `Invalid`, never a crash)."""

    title: str
    description: str | None = None
    status: TaskStatus | str = TaskStatus.TODO
    priority: int = DEFAULT_PRIORITY
    labels: Sequence[str] = ()
    due_at: datetime | None = None
    project_id: object = None  # None: the creator's inbox
    parent_id: object = None
    assignee_id: object = None


def fold_for_search(text: str) -> str:
    """The case-folded form that `q` matching compares (Unicode `str.casefold`)."""
    return text.casefold()


_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def is_task_id(value: str) -> bool:
    """True for a canonical UUID string (36 characters, lower-case hex with hyphens): what
    `str(uuid.UUID(...))` prints, checked without building a UUID (it runs on every request)."""
    return _CANONICAL_UUID.fullmatch(value) is not None


def as_utc(value: datetime) -> datetime:
    """A timezone-aware time converted to UTC; a naive time is a programming error."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("a naive datetime reached the domain; times must be timezone-aware")
    return value.astimezone(UTC)


def _title(value: object) -> str:
    return required_text("title", value, TITLE_MAX_LENGTH)


def _description(value: object) -> str | None:
    return optional_text("description", value, DESCRIPTION_MAX_LENGTH)


def parse_status(value: object) -> TaskStatus:
    """A task status from its name, else `FieldRejected` on field `status`."""
    if value is None:
        raise FieldRejected(FieldError("status", "must not be null"))
    if isinstance(value, str):
        try:
            return TaskStatus(value)
        except ValueError:
            pass
    allowed = ", ".join(s.value for s in TaskStatus)
    raise FieldRejected(FieldError("status", f"must be one of {allowed}"))


def parse_priority(name: str, value: object) -> int:
    """A priority 1-4 (an int, not a bool), else `FieldRejected` naming `name`."""
    if value is None:
        raise FieldRejected(FieldError(name, "must not be null"))
    if isinstance(value, bool) or not isinstance(value, int):
        raise FieldRejected(FieldError(name, "must be an integer"))
    if not PRIORITY_MIN <= value <= PRIORITY_MAX:
        raise FieldRejected(FieldError(name, f"must be between {PRIORITY_MIN} and {PRIORITY_MAX}"))
    return value


def _priority(value: object) -> int:
    return parse_priority("priority", value)


def normalise_labels(name: str, value: object) -> tuple[str, ...]:
    """Labels trimmed, 1-50 characters each, duplicates merged (first kept, order kept),
    at most 20 after merging; each bad item is reported as `name[index]`."""
    if value is None:
        raise FieldRejected(FieldError(name, "must not be null; use [] for no labels"))
    if isinstance(value, str | bytes) or not isinstance(value, list | tuple):
        raise FieldRejected(FieldError(name, "must be a list of strings"))
    errors: list[FieldError] = []
    seen: dict[str, None] = {}
    for index, item in enumerate(value):
        where = f"{name}[{index}]"
        if not isinstance(item, str):
            errors.append(FieldError(where, "must be a string"))
            continue
        label = item.strip()
        if not label:
            errors.append(FieldError(where, "must not be empty or only whitespace"))
        elif len(label) > LABEL_MAX_LENGTH:
            errors.append(FieldError(where, f"must be at most {LABEL_MAX_LENGTH} characters"))
        elif "\x00" in label:
            errors.append(FieldError(where, "must not contain NUL characters"))
        else:
            seen.setdefault(label, None)
    if not errors and len(seen) > LABELS_MAX:
        errors.append(FieldError(name, f"must hold at most {LABELS_MAX} distinct labels"))
    if errors:
        raise FieldRejected(*errors)
    return tuple(seen)


def _labels(value: object) -> tuple[str, ...]:
    return normalise_labels("labels", value)


def parse_time(name: str, value: object, *, nullable: bool) -> datetime | None:
    """A timezone-aware datetime converted to UTC (None allowed when `nullable`)."""
    if value is None:
        if nullable:
            return None
        raise FieldRejected(FieldError(name, "must not be null"))
    if not isinstance(value, datetime):
        raise FieldRejected(FieldError(name, "must be a date-time"))
    if value.tzinfo is None or value.utcoffset() is None:
        raise FieldRejected(FieldError(name, "must include a timezone offset"))
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise FieldRejected(FieldError(name, "is out of the representable range")) from None


def _due_at(value: object) -> datetime | None:
    return parse_time("due_at", value, nullable=True)


def parse_reference(name: str, value: object, *, nullable: bool = True) -> str | None:
    """An id given for `name` (a string, or None when `nullable`); whether it names anything
    is for the use case to find out."""
    if value is None:
        if nullable:
            return None
        raise FieldRejected(FieldError(name, "must not be null"))
    if not isinstance(value, str):
        raise FieldRejected(FieldError(name, "must be a string id"))
    return value


def _project_id(value: object) -> str:
    project_id = parse_reference("project_id", value, nullable=False)
    assert project_id is not None  # not nullable
    return project_id


def _parent_id(value: object) -> str | None:
    return parse_reference("parent_id", value)


def _assignee_id(value: object) -> str | None:
    return parse_reference("assignee_id", value)


def _take[T](
    errors: FieldErrors,
    fields: Mapping[str, object],
    name: str,
    current: T,
    normalise: Callable[[object], T],
) -> T:
    """`normalise(fields[name])`, or `current` when the field is absent or rejected."""
    if name not in fields:
        return current
    return errors.take(current, normalise, fields[name])


_HEADING = "invalid task fields"


def _unknown_fields(fields: Mapping[str, object]) -> FieldErrors:
    errors = FieldErrors()
    for name in fields:
        if name in SERVER_FIELDS:
            errors.errors.append(FieldError(name, "is set by the server and cannot be given"))
        elif name not in EDITABLE_FIELDS:
            errors.errors.append(FieldError(name, "is not a task field"))
    return errors


class _Take(Protocol):
    """How a field is parsed: `parse(*args)`, or `fallback` once its offence is kept."""

    def __call__[T](self, fallback: T, parse: Callable[..., T], *args: object) -> T: ...


def _strict[T](fallback: T, parse: Callable[..., T], *args: object) -> T:
    """A field parsed with no fallback: its offence is raised at once."""
    del fallback
    return parse(*args)


type _DraftFields = tuple[
    str, str | None, TaskStatus, int, tuple[str, ...], datetime | None, str | None, str | None
]


def _draft_fields(draft: TaskDraft, take: _Take) -> _DraftFields:
    """Every field of `draft` through its parser, in field order (title, description, status,
    priority, labels, due_at, then the references: project_id, checked and dropped, parent_id,
    assignee_id)."""
    title = take("", _title, draft.title)
    description = take(None, _description, draft.description)
    status = take(TaskStatus.TODO, parse_status, draft.status)
    priority = take(DEFAULT_PRIORITY, _priority, draft.priority)
    labels = take(_NO_LABELS, _labels, draft.labels)
    due_at = take(None, _due_at, draft.due_at)
    take(None, parse_reference, "project_id", draft.project_id)
    parent_id = take(None, _parent_id, draft.parent_id)
    assignee_id = take(None, _assignee_id, draft.assignee_id)
    return title, description, status, priority, labels, due_at, parent_id, assignee_id


def new_task(
    *, task_id: str, owner_id: str, project_id: str, draft: TaskDraft, now: datetime
) -> Task:
    """A new task in `project_id` at version 1, created and updated `now`; `completed_at` is
    `now` when it is created as done. Raises `Invalid` naming every offending field of `draft`
    (`draft.project_id` is the use case's to resolve; parent and assignee are checked here for
    their types only)."""
    now = as_utc(now)
    try:
        # A first pass stops at the first offence, a second then names every offending field:
        # most drafts are valid (a batch creates many), and they skip collecting.
        fields = _draft_fields(draft, _strict)
    except (FieldRejected, Invalid):
        errors = FieldErrors()
        _draft_fields(draft, errors.take)
        errors.raise_if_any(_HEADING)
        raise  # the second pass names the same offence: not reached
    title, description, status, priority, labels, due_at, parent_id, assignee_id = fields
    return Task(
        id=task_id,
        owner_id=owner_id,
        project_id=project_id,
        parent_id=parent_id,
        assignee_id=assignee_id,
        title=title,
        description=description,
        status=status,
        priority=priority,
        labels=labels,
        due_at=due_at,
        completed_at=now if status is TaskStatus.DONE else None,
        created_at=now,
        updated_at=now,
        version=1,
    )


def apply_changes(task: Task, changes: Mapping[str, object], now: datetime) -> Task:
    """`task` with a JSON merge patch applied: a key absent leaves its field alone, `None`
    clears `description` / `due_at` / `parent_id` / `assignee_id`, and `None` for title,
    status, priority, labels or project_id is `Invalid`. Unknown and server-set keys are
    `Invalid` too (every offending field named). The placement fields are taken as given: the
    use case checks them against the project (`domain.task_tree`).

    When the patch changes nothing, `task` itself is returned (same version and updated_at).
    Otherwise `version` goes up by one, `updated_at` becomes `now`, and `completed_at`
    becomes `now` on entering done and None on leaving it.
    """
    now = as_utc(now)
    errors = _unknown_fields(changes)
    title = _take(errors, changes, "title", task.title, _title)
    description = _take(errors, changes, "description", task.description, _description)
    status = _take(errors, changes, "status", task.status, parse_status)
    priority = _take(errors, changes, "priority", task.priority, _priority)
    labels = _take(errors, changes, "labels", task.labels, _labels)
    due_at = _take(errors, changes, "due_at", task.due_at, _due_at)
    project_id = _take(errors, changes, "project_id", task.project_id, _project_id)
    parent_id = _take(errors, changes, "parent_id", task.parent_id, _parent_id)
    assignee_id = _take(errors, changes, "assignee_id", task.assignee_id, _assignee_id)
    errors.raise_if_any(_HEADING)
    changed = replace(
        task,
        project_id=project_id,
        parent_id=parent_id,
        assignee_id=assignee_id,
        title=title,
        description=description,
        status=status,
        priority=priority,
        labels=labels,
        due_at=due_at,
    )
    if changed == task:
        return task
    completed_at = task.completed_at
    if status is TaskStatus.DONE and task.status is not TaskStatus.DONE:
        completed_at = now
    elif status is not TaskStatus.DONE:
        completed_at = None
    return replace(changed, completed_at=completed_at, updated_at=now, version=task.version + 1)


def carried_along(task: Task, *, project_id: str, keep_assignee: bool, now: datetime) -> Task:
    """A descendant moved with its ancestor into `project_id` (its parent stays, inside the
    moved subtree); its assignee is cleared unless `keep_assignee`. A new version."""
    return replace(
        task,
        project_id=project_id,
        assignee_id=task.assignee_id if keep_assignee else None,
        updated_at=as_utc(now),
        version=task.version + 1,
    )
