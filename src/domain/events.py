"""What happened to a task, as the use cases report it to the event publisher."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


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
