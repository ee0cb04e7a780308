"""What the MCP adapter calls, handed over by the composition root.

Use cases are factories (a fresh one per call). The task-page cursors, ETags and the request's
log context belong to the HTTP adapter's conventions; the composition root passes them in as
functions so both transports speak the same cursors and tags.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from domain.comments import CommentPosition
from domain.ports import ConcurrencyLimiter
from domain.ports.admission import Admission
from domain.task_queries import CursorPosition, TaskQuery
from domain.use_cases.events import ListProjectActivity, ListTaskActivity
from domain.use_cases.idempotency import RunOnce
from domain.use_cases.identity import GetCurrentUser
from domain.use_cases.projects import (
    CreateComment,
    CreateProject,
    ListComments,
    ListProjects,
)
from domain.use_cases.task_batch import RunTaskBatch
from domain.use_cases.tasks import (
    CreateTask,
    DeleteTask,
    GetTask,
    ListTasks,
    RestoreTask,
    UpdateTask,
)


class TaskCursors(Protocol):
    def encode(self, query: TaskQuery, position: CursorPosition) -> str:
        """The opaque cursor of the page after `position`."""
        ...

    def position(self, cursor: str, query: TaskQuery) -> CursorPosition:
        """Where `cursor` continues `query`; `Invalid` on field `cursor` otherwise."""
        ...


class ActivityCursors(Protocol):
    def encode(self, list_id: str, seq: int) -> str:
        """The opaque cursor of an activity list (`task:<id>` / `project:<id>`) after `seq`."""
        ...

    def after(self, list_id: str, cursor: str) -> int:
        """Where `cursor` continues that list; `Invalid` on field `cursor` otherwise."""
        ...


class CommentCursors(Protocol):
    def encode(self, task_id: str, position: CommentPosition) -> str:
        """The opaque cursor of the task's comment page after `position`."""
        ...

    def position(self, task_id: str, cursor: str) -> CommentPosition:
        """Where `cursor` continues the task's comment list; `Invalid` on field `cursor`
        otherwise."""
        ...


@dataclass(frozen=True, slots=True)
class McpServices:
    admission: Admission
    search_slots: ConcurrencyLimiter
    cursors: TaskCursors
    comment_cursors: CommentCursors
    activity_cursors: ActivityCursors
    etag_of: Callable[[str, int], str]
    # (If-Match value, resource id) -> expected version (None: any; -1: names no version)
    expected_version: Callable[[str | None, str], int | None]
    # Adds fields to the current request's log lines (its access line carries the audit).
    bind_log: Callable[..., None]

    run_once: Callable[[], RunOnce]
    get_current_user: Callable[[], GetCurrentUser]
    create_task: Callable[[], CreateTask]
    run_task_batch: Callable[[], RunTaskBatch]
    get_task: Callable[[], GetTask]
    list_tasks: Callable[[], ListTasks]
    update_task: Callable[[], UpdateTask]
    delete_task: Callable[[], DeleteTask]
    restore_task: Callable[[], RestoreTask]
    list_projects: Callable[[], ListProjects]
    create_project: Callable[[], CreateProject]
    create_comment: Callable[[], CreateComment]
    list_comments: Callable[[], ListComments]
    list_task_activity: Callable[[], ListTaskActivity]
    list_project_activity: Callable[[], ListProjectActivity]
