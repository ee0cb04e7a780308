"""The trash: where a deleted task waits, with the subtasks deleted with it, until it is
restored, deleted for good, or purged once older than the retention.

A task moves to the trash with its live descendants, all with one `deleted_at` and the id of the
task the user deleted (`trashed_with`): restoring that task brings back exactly those. A trashed
task keeps its place under its creator's cap until it is gone for good (it still takes room).
Orders every adapter reproduces exactly: newest `deleted_at` first, then id descending; a page
continues strictly after a `TrashPosition`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from domain.tasks import Task

# Days a trashed task is kept before the worker purges it (TRASH_RETENTION_DAYS).
DEFAULT_TRASH_RETENTION_DAYS = 30
DEFAULT_TRASH_PAGE = 50
MAX_TRASH_PAGE = 200


@dataclass(frozen=True, slots=True)
class TrashedTask:
    """A task in the trash: when it went there and with which deleted task (its own id when the
    user deleted this one)."""

    task: Task
    deleted_at: datetime
    trashed_with: str


@dataclass(frozen=True, slots=True)
class TrashPosition:
    """A place in the trash list (newest first): the keyset (deleted_at, id) of the last one
    seen. Adapters list `WHERE (deleted_at, id) < (position)` ORDER BY deleted_at DESC, id DESC."""

    deleted_at: datetime
    id: str

    @classmethod
    def of(cls, trashed: TrashedTask) -> TrashPosition:
        return cls(trashed.deleted_at, trashed.task.id)
