"""Ports and query values of the task aggregate: the repository, its unit of work, the event
publisher, and the list query (filter, sort, keyset position) every repository must honour.

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

import functools
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from domain.errors import FieldError, Invalid
from domain.ports import UnitOfWorkBase
from domain.tasks import (
    PRIORITY_MAX,
    PRIORITY_MIN,
    FieldRejected,
    Task,
    TaskStatus,
    is_task_id,
    normalise_labels,
    parse_priority,
    parse_time,
    raise_field_errors,
)

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
Q_MAX_LENGTH = 200
CURSOR_PAYLOAD_VERSION = 1


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


def _collect[T](errors: list[FieldError], parse: Callable[[], T], fallback: T) -> T:
    try:
        return parse()
    except FieldRejected as rejected:
        errors.extend(rejected.errors)
        return fallback


def _raise_if_any(errors: list[FieldError]) -> None:
    raise_field_errors(errors, "invalid query parameters")


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


def _filter_status(value: object) -> TaskStatus | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            return TaskStatus(value)
        except ValueError:
            pass
    allowed = ", ".join(s.value for s in TaskStatus)
    raise FieldRejected(FieldError("status", f"must be one of {allowed}"))


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
    Construction validates and normalises (times to UTC), raising `Invalid` for every bad field.
    """

    status: TaskStatus | None = None
    priority: int | None = None
    labels: tuple[str, ...] = ()
    due_before: datetime | None = None
    due_after: datetime | None = None
    q: str | None = None

    def __post_init__(self) -> None:
        errors: list[FieldError] = []
        no_labels: tuple[str, ...] = ()
        status = _collect(errors, lambda: _filter_status(self.status), None)
        priority = (
            None
            if self.priority is None
            else _collect(errors, lambda: parse_priority("priority", self.priority), None)
        )
        labels = _collect(errors, lambda: normalise_labels("label", self.labels), no_labels)
        due_before = _collect(
            errors, lambda: parse_time("due_before", self.due_before, nullable=True), None
        )
        due_after = _collect(
            errors, lambda: parse_time("due_after", self.due_after, nullable=True), None
        )
        q = _collect(errors, lambda: _q(self.q), None)
        _raise_if_any(errors)
        object.__setattr__(self, "status", status)
        object.__setattr__(self, "priority", priority)
        object.__setattr__(self, "labels", labels)
        object.__setattr__(self, "due_before", due_before)
        object.__setattr__(self, "due_after", due_after)
        object.__setattr__(self, "q", q)


def _check_position(sort: TaskSort, after: object) -> None:
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
        errors: list[FieldError] = []
        sort = _collect(errors, lambda: _sort(self.sort), TaskSort.CREATED_AT_DESC)
        _collect(errors, lambda: _limit(self.limit), DEFAULT_PAGE_SIZE)
        if self.after is not None and not errors:
            _collect(errors, lambda: _check_position(sort, self.after), None)
        _raise_if_any(errors)
        object.__setattr__(self, "sort", sort)

    def at(self, position: CursorPosition | None) -> TaskQuery:
        """The same query starting after `position`."""
        return replace(self, after=position)

    def fingerprint(self) -> str:
        """A digest of the sort and filter (not limit, not position): a cursor made for one
        query is refused by another."""
        return _fingerprint(self.sort, self.filter)


# --- cursor payload ------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1024)
def _fingerprint(sort: TaskSort, f: TaskFilter) -> str:
    """`TaskQuery.fingerprint`, kept per (sort, filter): every page of a list repeats it."""
    canonical = [
        sort.value,
        f.status.value if f.status else None,
        f.priority,
        list(f.labels),
        f.due_before.isoformat() if f.due_before else None,
        f.due_after.isoformat() if f.due_after else None,
        f.q,
    ]
    text = json.dumps(canonical, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def cursor_payload(query: TaskQuery, position: CursorPosition) -> dict[str, object]:
    """A JSON-ready dict for the next-page cursor. The HTTP layer serialises, signs and
    base64url-encodes it; `position_from_payload` reads it back."""
    value = position.value
    key: object = value.isoformat() if isinstance(value, datetime) else value
    return {
        "v": CURSOR_PAYLOAD_VERSION,
        "s": query.sort.value,
        "f": query.fingerprint(),
        "k": key,
        "i": position.id,
    }


def position_from_payload(payload: object, query: TaskQuery) -> CursorPosition:
    """The position a cursor payload names, checked against `query` (its sort and filter must
    be the ones the cursor was made for). Raises `Invalid` on field `cursor` otherwise."""
    bad = Invalid.of("cursor", "is malformed or belongs to another query")
    if not isinstance(payload, Mapping) or set(payload) != {"v", "s", "f", "k", "i"}:
        raise bad
    if (
        payload["v"] != CURSOR_PAYLOAD_VERSION
        or payload["s"] != query.sort.value
        or payload["f"] != query.fingerprint()
    ):
        raise bad
    task_id, key = payload["i"], payload["k"]
    if not isinstance(task_id, str):
        raise bad
    value: SortValue
    if key is None or isinstance(key, int):
        value = key
    elif isinstance(key, str):
        try:
            value = datetime.fromisoformat(key)
        except ValueError:
            raise bad from None
    else:
        raise bad
    position = CursorPosition(value, task_id)
    try:
        _check_position(query.sort, position)
    except FieldRejected:
        raise bad from None
    return position


# --- ports ---------------------------------------------------------------------------------------


class TaskRepository(Protocol):
    """Tasks of every owner; reads are always scoped to one owner."""

    async def add(self, task: Task) -> None:
        """Insert a new task (its id is new)."""
        ...

    async def get(self, owner_id: str, task_id: str) -> Task | None:
        """The task with this id if `owner_id` owns it, else None."""
        ...

    async def update(self, task: Task, expected_version: int) -> bool:
        """Replace the stored task with `task` (same id and owner) if the stored version is
        still `expected_version`; False (nothing written) when it is not or the task is gone."""
        ...

    async def delete(self, owner_id: str, task_id: str, expected_version: int) -> bool:
        """Delete the owner's task if its stored version is `expected_version`; False when it
        is not, or the task is gone."""
        ...

    async def list_page(self, owner_id: str, query: TaskQuery, *, limit: int) -> list[Task]:
        """At most `limit` of the owner's tasks matching `query.filter`, in `query.sort` order,
        strictly after `query.after` (see the module text). `query.limit` is ignored here: the
        use case asks for one more than a page to learn whether another page exists."""
        ...


class TaskUnitOfWork(UnitOfWorkBase, Protocol):
    @property
    def tasks(self) -> TaskRepository: ...


type TaskUnitOfWorkFactory = Callable[[], TaskUnitOfWork]


class TaskEventName(StrEnum):
    CREATED = "task.created"
    UPDATED = "task.updated"
    DELETED = "task.deleted"


@dataclass(frozen=True, slots=True)
class TaskEvent:
    """Something that happened to a task; `version` is the task's version after the change
    (for a deletion: the version that was deleted)."""

    name: TaskEventName
    task_id: str
    owner_id: str
    occurred_at: datetime
    version: int


class EventPublisher(Protocol):
    async def publish(self, event: TaskEvent) -> None:
        """Hand the event on. Called after the commit; must not raise (log and drop instead)."""
        ...
