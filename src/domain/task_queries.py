"""Task list queries: filter, sort and keyset position, validated on construction; every
task repository must honour them.

Order of a list (every adapter reproduces it exactly):
- Each sort orders by the tuple (sort key, id), ascending for `created_at`, `due_at`, `priority`,
  `updated_at`, and the whole tuple descending for the `-` variants. `id` is compared as the
  canonical lower-case UUID string (same order as PostgreSQL's `uuid` type).
- `due_at` NULL counts as +infinity: the ascending key is (due_at IS NULL, due_at, id), so tasks
  without a due date come last in `due_at` and first in `-due_at`.
- `after` (keyset): only tasks strictly after the position in that order. For a position
  (value v, id i) and ascending order this is `(key, id) > (v, i)`; descending `(key, id) < (v, i)`.
  For `due_at` spelled out (PostgreSQL and SQLite alike):
    due_at  ascending,  v set:  due_at > v OR (due_at = v AND id > i) OR due_at IS NULL
    due_at  ascending,  v NULL: due_at IS NULL AND id > i
    -due_at descending, v set:  due_at < v OR (due_at = v AND id < i)
    -due_at descending, v NULL: due_at IS NOT NULL OR id < i
  and ORDER BY for `due_at`: due_at ASC NULLS LAST, id ASC; for `-due_at`: due_at DESC NULLS
  FIRST, id DESC (PostgreSQL's default NULL placement; one btree index on (owner_id, due_at, id)
  serves both directions).
Pagination is stable under inserts for every sort. `updated_at` and `priority` change when a task
is edited, so an edit between two pages may move that task across the page boundary.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum

from domain.errors import FieldError, FieldErrors, FieldRejected
from domain.tasks import (
    PRIORITY_MAX,
    PRIORITY_MIN,
    Task,
    TaskStatus,
    is_task_id,
    normalise_labels,
    parse_priority,
    parse_status,
    parse_time,
)

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
Q_MAX_LENGTH = 200


class TaskSort(StrEnum):
    CREATED_AT = "created_at"
    CREATED_AT_DESC = "-created_at"
    DUE_AT = "due_at"
    DUE_AT_DESC = "-due_at"
    PRIORITY = "priority"
    PRIORITY_DESC = "-priority"
    UPDATED_AT = "updated_at"
    UPDATED_AT_DESC = "-updated_at"

    @property
    def field(self) -> str:
        """The task attribute sorted on: created_at, due_at, priority or updated_at."""
        return self.value.removeprefix("-")

    @property
    def descending(self) -> bool:
        return self.value.startswith("-")


type SortValue = datetime | int | None


@dataclass(frozen=True, slots=True)
class CursorPosition:
    """A place in a sorted list: the sort key of the last task seen and its id.
    `value` is a UTC datetime (created_at, updated_at, due_at; None for a NULL due_at) or the
    priority int."""

    value: SortValue
    id: str

    @classmethod
    def of(cls, task: Task, sort: TaskSort) -> CursorPosition:
        value: SortValue
        match sort.field:
            case "created_at":
                value = task.created_at
            case "updated_at":
                value = task.updated_at
            case "due_at":
                value = task.due_at
            case _:
                value = task.priority
        return cls(value, task.id)


_HEADING = "invalid query parameters"


def _optional_time(name: str, value: object) -> datetime | None:
    return parse_time(name, value, nullable=True)


NONE = "none"  # assignee_id / parent_id filter: no assignee, no parent (top level)
ME = "me"  # assignee_id filter: the caller


def _project_id(value: object) -> str | None:
    # Any string: one naming no project the caller reads gives an empty list, like an unknown id.
    if value is None or isinstance(value, str):
        return value
    raise FieldRejected(FieldError("project_id", "must be a project id"))


def _assignee_id(value: object) -> str | None:
    if value is None or (isinstance(value, str) and (value in (ME, NONE) or is_task_id(value))):
        return value
    raise FieldRejected(FieldError("assignee_id", "must be a user id, me or none"))


def _parent_id(value: object) -> str | None:
    if value is None or (isinstance(value, str) and (value == NONE or is_task_id(value))):
        return value
    raise FieldRejected(FieldError("parent_id", "must be a task id or none"))


def _q(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise FieldRejected(FieldError("q", "must be a string"))
    if not 1 <= len(value) <= Q_MAX_LENGTH:
        raise FieldRejected(FieldError("q", f"must be 1 to {Q_MAX_LENGTH} characters"))
    if "\x00" in value:
        raise FieldRejected(FieldError("q", "must not contain NUL characters"))
    return value


@dataclass(frozen=True, slots=True)
class TaskFilter:
    """Which tasks a list returns; every criterion given must hold.

    - `status`, `priority`: equal.
    - `labels`: the task carries every one of them (exact, case-sensitive match after trimming;
      normalised like task labels; error field name `label`, the query parameter).
    - `due_after` <= due_at < `due_before` (half-open, so adjacent windows tile); a task without
      `due_at` never matches when either bound is given.
    - `q`: `fold_for_search(q)` is a substring of `fold_for_search(title)` or of
      `fold_for_search(description)` (Unicode case-insensitive; 1-200 characters, not trimmed).
    - `project_id`: the task is in that project (one the caller cannot read: nothing matches).
    - `assignee_id`: a user id, `none` (unassigned) or `me` (`for_caller` turns it into the id).
    - `parent_id`: a task id (its direct subtasks) or `none` (top-level tasks).
    Construction validates and normalises (times to UTC), raising `Invalid` for every bad field.
    """

    status: TaskStatus | None = None
    priority: int | None = None
    labels: tuple[str, ...] = ()
    due_before: datetime | None = None
    due_after: datetime | None = None
    q: str | None = None
    project_id: str | None = None
    assignee_id: str | None = None
    parent_id: str | None = None

    def __post_init__(self) -> None:
        errors = FieldErrors()
        no_labels: tuple[str, ...] = ()
        status = None if self.status is None else errors.take(None, parse_status, self.status)
        priority = (
            None
            if self.priority is None
            else errors.take(None, parse_priority, "priority", self.priority)
        )
        labels = errors.take(no_labels, normalise_labels, "label", self.labels)
        due_before = errors.take(None, _optional_time, "due_before", self.due_before)
        due_after = errors.take(None, _optional_time, "due_after", self.due_after)
        q = errors.take(None, _q, self.q)
        errors.take(None, _project_id, self.project_id)
        errors.take(None, _assignee_id, self.assignee_id)
        errors.take(None, _parent_id, self.parent_id)
        errors.raise_if_any(_HEADING)
        object.__setattr__(self, "status", status)
        object.__setattr__(self, "priority", priority)
        object.__setattr__(self, "labels", labels)
        object.__setattr__(self, "due_before", due_before)
        object.__setattr__(self, "due_after", due_after)
        object.__setattr__(self, "q", q)

    def for_caller(self, user_id: str) -> TaskFilter:
        """The filter with `assignee_id=me` spelled as the caller's id."""
        return replace(self, assignee_id=user_id) if self.assignee_id == ME else self


def check_position(sort: TaskSort, after: object) -> None:
    """`FieldRejected` on field `cursor` unless `after` is a position in `sort` order."""
    if not isinstance(after, CursorPosition) or not is_task_id(after.id):
        raise FieldRejected(FieldError("cursor", "is not a valid position"))
    value = after.value
    if sort.field == "priority":
        ok = (
            isinstance(value, int)
            and not isinstance(value, bool)
            and PRIORITY_MIN <= value <= PRIORITY_MAX
        )
    else:
        ok = isinstance(value, datetime) and value.utcoffset() is not None
        ok = ok or (sort.field == "due_at" and value is None)
    if not ok:
        raise FieldRejected(FieldError("cursor", "does not fit the sort order"))


def _sort(value: object) -> TaskSort:
    if isinstance(value, str):
        try:
            return TaskSort(value)
        except ValueError:
            pass
    allowed = ", ".join(s.value for s in TaskSort)
    raise FieldRejected(FieldError("sort", f"must be one of {allowed}"))


def _limit(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise FieldRejected(FieldError("limit", "must be an integer"))
    if not 1 <= value <= MAX_PAGE_SIZE:
        raise FieldRejected(FieldError("limit", f"must be between 1 and {MAX_PAGE_SIZE}"))
    return value


@dataclass(frozen=True, slots=True)
class TaskQuery:
    """One page request: filter, sort (default `-created_at`), page size `limit` (1-200,
    default 50) and `after`, the keyset position of the previous page's last task.
    Construction validates (`Invalid` with fields `sort`, `limit`, `cursor`)."""

    filter: TaskFilter = field(default_factory=TaskFilter)
    sort: TaskSort = TaskSort.CREATED_AT_DESC
    limit: int = DEFAULT_PAGE_SIZE
    after: CursorPosition | None = None

    def __post_init__(self) -> None:
        errors = FieldErrors()
        sort = errors.take(TaskSort.CREATED_AT_DESC, _sort, self.sort)
        errors.take(DEFAULT_PAGE_SIZE, _limit, self.limit)
        if self.after is not None and not errors.errors:
            errors.take(None, check_position, sort, self.after)
        errors.raise_if_any(_HEADING)
        object.__setattr__(self, "sort", sort)

    def at(self, position: CursorPosition | None) -> TaskQuery:
        """The same query starting after `position`."""
        return replace(self, after=position)
