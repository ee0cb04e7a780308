"""Test doubles for the clock and id ports, and task builders."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from domain.tasks import Task, TaskStatus

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


class FakeClock:
    def __init__(self, start: datetime = T0) -> None:
        self.current = start

    def now(self) -> datetime:
        return self.current

    def advance(self, seconds: float = 1) -> datetime:
        self.current += timedelta(seconds=seconds)
        return self.current


class SequentialIds:
    """Canonical UUID strings that sort in creation order, like UUIDv7."""

    def __init__(self) -> None:
        self.count = 0

    def new_id(self) -> str:
        self.count += 1
        return str(uuid.UUID(int=self.count))


def make_task(
    task_id: str,
    *,
    owner_id: str = "owner-1",
    project_id: str = "project-1",
    assignee_id: str | None = None,
    parent_id: str | None = None,
    title: str = "A task",
    description: str | None = None,
    status: TaskStatus = TaskStatus.TODO,
    priority: int = 1,
    labels: tuple[str, ...] = (),
    due_at: datetime | None = None,
    created_at: datetime = T0,
    updated_at: datetime | None = None,
) -> Task:
    return Task(
        id=task_id,
        owner_id=owner_id,
        project_id=project_id,
        assignee_id=assignee_id,
        parent_id=parent_id,
        title=title,
        description=description,
        status=status,
        priority=priority,
        labels=labels,
        due_at=due_at,
        completed_at=created_at if status is TaskStatus.DONE else None,
        created_at=created_at,
        updated_at=updated_at or created_at,
        version=1,
    )
