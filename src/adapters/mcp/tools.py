"""The MCP tools: each one is a thin adapter over a use case, registered from `TOOLS`.

A tool is a `ToolSpec`: its name, the scope it needs (`tools/list` shows a credential only the
tools its scopes allow), its annotations, and a builder that makes its function over the
services. The function's signature is its input schema and its TypedDict return type its output
schema (the SDK derives both). A domain error is a tool result with `isError: true` and the
HTTP API's message; batch tools treat each item on its own and report every item.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, NotRequired, TypedDict, cast

import msgspec
from mcp_types import TextContent, ToolAnnotations
from pydantic import ConfigDict, Field, StringConstraints

from adapters.mcp.exchange import WireResult
from adapters.mcp.gate import current_principal
from adapters.mcp.services import McpServices
from domain.auth import Principal, Scope
from domain.comments import Comment
from domain.errors import DomainError, Invalid
from domain.ports import StoredResponse
from domain.projects import ProjectDraft, ProjectView
from domain.task_queries import TaskFilter, TaskQuery
from domain.tasks import Task, TaskDraft, TaskStatus
from domain.use_cases.events import DEFAULT_ACTIVITY_PAGE
from domain.use_cases.idempotency import Replayed
from domain.use_cases.projects import DEFAULT_COMMENT_PAGE
from domain.use_cases.task_batch import CreateOp
from domain.use_cases.task_search import list_tasks_within_slots
from domain.users import User

MAX_BATCH = 50

# --- shapes (structured output) -------------------------------------------------------------------


class TaskOut(TypedDict):
    id: str
    project_id: str
    parent_id: str | None
    assignee_id: str | None
    title: str
    description: str | None
    status: str
    priority: int
    labels: list[str]
    due_at: datetime | None
    completed_at: datetime | None
    created_at: datetime
    updated_at: datetime
    version: int
    etag: str


class FieldProblem(TypedDict):
    field: str
    message: str


class ToolProblem(TypedDict):
    message: str
    errors: list[FieldProblem]


class ItemResult(TypedDict):
    index: int
    ok: bool
    task: NotRequired[TaskOut]
    error: NotRequired[ToolProblem]


class TaskBatch(TypedDict):
    results: list[ItemResult]
    succeeded: int
    failed: int


class AddedTasks(TaskBatch):
    replayed: bool


class DeletedItem(TypedDict):
    index: int
    id: str
    ok: bool
    error: NotRequired[ToolProblem]


class DeletedTasks(TypedDict):
    results: list[DeletedItem]
    succeeded: int
    failed: int


class TaskPageOut(TypedDict):
    items: list[TaskOut]
    next_cursor: str | None


class ProjectOut(TypedDict):
    id: str
    name: str
    description: str | None
    inbox: bool
    role: str
    created_at: datetime
    updated_at: datetime
    version: int
    etag: str


class ProjectListOut(TypedDict):
    items: list[ProjectOut]


class CommentOut(TypedDict):
    id: str
    task_id: str
    author_id: str
    body: str
    created_at: datetime


class ActivityPageOut(TypedDict):
    items: list[dict[str, Any]]
    next_cursor: str | None


class CommentPageOut(TypedDict):
    items: list[CommentOut]
    next_cursor: str | None


class UserOut(TypedDict):
    id: str
    email: str
    name: str | None
    created_at: datetime


class WhoAmI(TypedDict):
    user: UserOut
    credential: str
    actor: str
    scopes: list[str]
    project_ids: list[str] | None


# --- inputs ---------------------------------------------------------------------------------------


class NewTask(TypedDict):
    __pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[misc]

    title: Annotated[str, Field(description="1 to 500 characters after trimming.")]
    description: NotRequired[Annotated[str | None, Field(description="Up to 20,000 characters.")]]
    status: NotRequired[Annotated[str, Field(description="todo (default), in_progress or done")]]
    priority: NotRequired[Annotated[int, Field(description="1 (normal, default) to 4 (urgent)")]]
    labels: NotRequired[
        Annotated[list[str], Field(description="Up to 20 labels of 1 to 50 characters.")]
    ]
    due_at: NotRequired[Annotated[datetime | None, Field(description="RFC 3339 time or null.")]]
    project_id: NotRequired[
        Annotated[
            str | None,
            Field(
                description="The project (default: your inbox; a key restricted to projects "
                "must name one)."
            ),
        ]
    ]
    parent_id: NotRequired[
        Annotated[str | None, Field(description="A task of the same project, or null.")]
    ]
    assignee_id: NotRequired[
        Annotated[str | None, Field(description="A member of the project, or null.")]
    ]


class TaskChanges(TypedDict, total=False):
    """A JSON merge patch: a field left out stays as it is; null clears description or due_at."""

    __pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[misc]

    title: str | None
    description: str | None
    status: str | None
    priority: int | None
    labels: list[str] | None
    due_at: datetime | None
    project_id: str | None
    parent_id: str | None
    assignee_id: str | None


class TaskPatch(TypedDict):
    __pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[misc]

    id: Annotated[str, Field(description="The task's id.")]
    changes: TaskChanges
    if_match: NotRequired[
        Annotated[
            str,
            Field(
                description="The task's etag as last read: the change is refused if the task "
                "changed since."
            ),
        ]
    ]


class TaskToDelete(TypedDict):
    __pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[misc]

    id: Annotated[str, Field(description="The task's id.")]
    if_match: NotRequired[
        Annotated[
            str,
            Field(
                description="The task's etag as last read: the delete is refused if the task "
                "changed since."
            ),
        ]
    ]


IdempotencyKey = Annotated[
    str,
    StringConstraints(pattern=r"^[\x21-\x7e]{1,255}$"),
    Field(description="1-255 visible ASCII"),
]

# --- the registry ---------------------------------------------------------------------------------

ToolFn = Callable[..., Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class ToolSpec:
    name: str
    title: str
    description: str
    scope: Scope | None  # None: any valid credential
    annotations: ToolAnnotations
    build: Callable[[McpServices], ToolFn]


READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)


class Refused(Exception):
    """A tool call refused with a message of its own (not a domain error)."""


_encode_json = msgspec.json.Encoder().encode


def wire(value: Mapping[str, Any]) -> dict[str, Any]:
    """An output shape as JSON values, in one pass: times as RFC 3339 (`Z` for UTC, as the HTTP
    API writes them), enums as their values, tuples as lists."""
    return cast(dict[str, Any], msgspec.to_builtins(value, builtin_types=(), order=None))


def structured_result(value: Mapping[str, Any]) -> WireResult:
    """A tool's structured output as its result: the structured content, and (for clients that
    read only the content blocks, as the spec asks) the same object as compact JSON text. The
    SDK would write that text indented, which makes a page of tasks a third larger to encode,
    send and parse. The output schema stays published; the server does not check a result
    against it (see `McpEndpoint`), the SDK's client does."""
    content = wire(value)
    return WireResult(
        content=[TextContent(type="text", text=_encode_json(content).decode())],
        structured_content=content,
    )


def answers(fn: ToolFn) -> ToolFn:
    """`fn` whose answer is its structured output (`structured_result`) and whose refusals (a
    domain error, `Refused`) are tool results with `isError: true`: the HTTP API's message as
    the text (nothing prefixed), the message and the offending fields as the structured
    content. A result `fn` built itself (a batch with failures) goes out as it is."""

    @functools.wraps(fn)
    async def tool(*args: Any, **kwargs: Any) -> Any:
        try:
            result = await fn(*args, **kwargs)
        except DomainError as exc:
            found = problem(exc)
        except Refused as exc:
            found = ToolProblem(message=str(exc), errors=[])
        else:
            return structured_result(result) if isinstance(result, dict) else result
        return WireResult(
            content=[TextContent(type="text", text=_failure_text(found))],
            structured_content=dict(found),
            is_error=True,
        )

    return tool


def _caller(scope: Scope) -> Principal:
    principal = current_principal()
    principal.require(scope)
    return principal


def problem(exc: DomainError) -> ToolProblem:
    errors = getattr(exc, "errors", None) or []
    return ToolProblem(
        message=str(exc),
        errors=[FieldProblem(field=e.field, message=e.message) for e in errors],
    )


def _failure_text(found: ToolProblem) -> str:
    lines = [found["message"], *(f"- {e['field']}: {e['message']}" for e in found["errors"])]
    return "\n".join(lines)


def task_out(task: Task, etag_of: Callable[[str, int], str]) -> TaskOut:
    return TaskOut(
        id=task.id,
        project_id=task.project_id,
        parent_id=task.parent_id,
        assignee_id=task.assignee_id,
        title=task.title,
        description=task.description,
        status=str(task.status),
        priority=task.priority,
        labels=list(task.labels),
        due_at=task.due_at,
        completed_at=task.completed_at,
        created_at=task.created_at,
        updated_at=task.updated_at,
        version=task.version,
        etag=etag_of(task.id, task.version),
    )


def project_out(view: ProjectView, etag_of: Callable[[str, int], str]) -> ProjectOut:
    project = view.project
    return ProjectOut(
        id=project.id,
        name=project.name,
        description=project.description,
        inbox=project.inbox,
        role=str(view.role),
        created_at=project.created_at,
        updated_at=project.updated_at,
        version=project.version,
        etag=etag_of(project.id, project.version),
    )


def comment_out(comment: Comment) -> CommentOut:
    return CommentOut(
        id=comment.id,
        task_id=comment.task_id,
        author_id=comment.author_id,
        body=comment.body,
        created_at=comment.created_at,
    )


def _batch_answer[B: (TaskBatch, DeletedTasks)](batch: B, verb: str) -> B:
    """The batch as the tool's result: an error result (with the structured results) when any
    item failed, so the model notices; each failure is spelled out in the text."""
    if not batch["failed"]:
        return batch
    lines = [f"{batch['succeeded']} of {len(batch['results'])} tasks {verb}; failures:"]
    for item in batch["results"]:
        if not item["ok"]:
            error = item["error"]
            fields = "; ".join(f"{e['field']}: {e['message']}" for e in error["errors"])
            lines.append(
                f"- item {item['index']}: {error['message']}" + (f" ({fields})" if fields else "")
            )
    text = "\n".join(lines)
    return cast(
        B,
        WireResult(
            content=[TextContent(type="text", text=text)],
            structured_content=wire(batch),
            is_error=True,
        ),
    )


def _item(index: int, task: TaskOut | None, error: DomainError | None) -> ItemResult:
    if task is None:
        assert error is not None  # an operation ends with its task or its error
        return ItemResult(index=index, ok=False, error=problem(error))
    return ItemResult(index=index, ok=True, task=task)


def _answer(results: list[ItemResult]) -> TaskBatch:
    failed = sum(1 for r in results if not r["ok"])
    return TaskBatch(results=results, succeeded=len(results) - failed, failed=failed)


async def _each(
    count: int, step: Callable[[int], Awaitable[Task]], etag_of: Callable[[str, int], str]
) -> TaskBatch:
    results: list[ItemResult] = []
    for index in range(count):
        try:
            task = await step(index)
        except DomainError as exc:
            results.append(_item(index, None, exc))
        else:
            results.append(_item(index, task_out(task, etag_of), None))
    return _answer(results)


def _batch_size(items: list[Any], name: str) -> None:
    if not 1 <= len(items) <= MAX_BATCH:
        raise Refused(f"{name}: must hold 1 to {MAX_BATCH} items (got {len(items)})")


# --- the tools ------------------------------------------------------------------------------------


def _whoami(s: McpServices) -> ToolFn:
    async def whoami() -> WhoAmI:
        principal = current_principal()
        user: User = await s.get_current_user().execute(principal)
        return WhoAmI(
            user=UserOut(
                id=user.id,
                email=user.email,
                name=user.name,
                created_at=user.created_at,
            ),
            credential=f"{principal.kind.value}:{principal.credential_id}",
            actor=principal.actor,
            scopes=sorted(principal.scopes),
            project_ids=sorted(principal.project_ids)
            if principal.project_ids is not None
            else None,
        )

    return whoami


def _find_tasks(s: McpServices) -> ToolFn:
    async def find_tasks(
        status: Annotated[str | None, Field(description="todo, in_progress or done")] = None,
        priority: Annotated[int | None, Field(description="1 to 4")] = None,
        labels: Annotated[
            list[str] | None, Field(description="Every one of these labels must be on the task.")
        ] = None,
        due_before: Annotated[datetime | None, Field(description="due_at < this")] = None,
        due_after: Annotated[datetime | None, Field(description="due_at >= this")] = None,
        q: Annotated[
            str | None, Field(description="Text in the title or description (case-insensitive).")
        ] = None,
        sort: Annotated[
            str,
            Field(
                description="created_at, -created_at (newest first, default), due_at, -due_at, "
                "priority, -priority, updated_at, -updated_at"
            ),
        ] = "-created_at",
        limit: Annotated[int, Field(description="1 to 200 tasks per page")] = 50,
        cursor: Annotated[
            str | None, Field(description="next_cursor of the previous page, to read on.")
        ] = None,
    ) -> TaskPageOut:
        principal = _caller(Scope.TASKS_READ)
        query = TaskQuery(
            filter=TaskFilter(
                status=status,  # type: ignore[arg-type]
                priority=priority,
                labels=tuple(labels or ()),
                due_before=due_before,
                due_after=due_after,
                q=q,
            ),
            sort=sort,  # type: ignore[arg-type]
            limit=limit,
        )
        if cursor is not None:
            query = query.at(s.cursors.position(cursor, query))
        page = await list_tasks_within_slots(s.search_slots, s.list_tasks(), principal, query)
        next_cursor = (
            s.cursors.encode(query, page.next_position) if page.next_position is not None else None
        )
        return TaskPageOut(
            items=[task_out(t, s.etag_of) for t in page.items], next_cursor=next_cursor
        )

    return find_tasks


def _get_task(s: McpServices) -> ToolFn:
    async def get_task(id: Annotated[str, Field(description="The task's id.")]) -> TaskOut:
        principal = _caller(Scope.TASKS_READ)
        task = await s.get_task().execute(principal, id)
        return task_out(task, s.etag_of)

    return get_task


def _fingerprint(value: object) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _add_tasks(s: McpServices) -> ToolFn:
    async def add_tasks(
        tasks: Annotated[list[NewTask], Field(description="1 to 50 tasks to create.")],
        idempotency_key: Annotated[
            IdempotencyKey | None,
            Field(
                description="Any unique text: a retry with the same key and tasks returns the "
                "first result instead of creating the tasks again (kept 24 h)."
            ),
        ] = None,
    ) -> AddedTasks:
        principal = _caller(Scope.TASKS_WRITE)
        _batch_size(tasks, "tasks")
        use_case = s.run_task_batch()

        def draft(item: Mapping[str, Any]) -> TaskDraft:
            return TaskDraft(
                title=item["title"],
                description=item.get("description"),
                status=item.get("status", TaskStatus.TODO),
                priority=item.get("priority", 1),
                labels=tuple(item.get("labels", ())),
                due_at=item.get("due_at"),
                project_id=item.get("project_id"),
                parent_id=item.get("parent_id"),
                assignee_id=item.get("assignee_id"),
            )

        async def run() -> TaskBatch:
            # The batch use case, not atomic: each task is created or fails on its own.
            operations = [CreateOp(draft(item)) for item in tasks]
            done = await use_case.execute(principal, operations, atomic=False)
            return _answer(
                [
                    _item(r.index, None if r.task is None else task_out(r.task, s.etag_of), r.error)
                    for r in done
                ]
            )

        if idempotency_key is None:
            batch = await run()
            replayed = False
        else:
            outcome = await s.run_once().execute(
                principal.user_id,
                idempotency_key,
                _fingerprint(["add-tasks", tasks]),
                run,
                lambda done: StoredResponse(200, _encode_json(done), ()),
                "idempotency_key",
            )
            if isinstance(outcome, Replayed):
                batch, replayed = json.loads(outcome.response.body), True
            else:
                batch, replayed = outcome, False
        return cast(AddedTasks, _batch_answer(AddedTasks(**batch, replayed=replayed), "created"))

    return add_tasks


def _update_tasks(s: McpServices) -> ToolFn:
    async def update_tasks(
        patches: Annotated[list[TaskPatch], Field(description="1 to 50 changes, one per task.")],
    ) -> TaskBatch:
        principal = _caller(Scope.TASKS_WRITE)
        _batch_size(patches, "patches")
        update = s.update_task()

        async def one(index: int) -> Task:
            patch = patches[index]
            task_id = patch["id"]
            expected = s.expected_version(patch.get("if_match"), task_id)
            return await update.execute(principal, task_id, patch["changes"], expected)

        return _batch_answer(await _each(len(patches), one, s.etag_of), "updated")

    return update_tasks


def _complete_tasks(s: McpServices) -> ToolFn:
    async def complete_tasks(
        ids: Annotated[list[str], Field(description="1 to 50 task ids to mark done.")],
    ) -> TaskBatch:
        principal = _caller(Scope.TASKS_WRITE)
        _batch_size(ids, "ids")
        update = s.update_task()
        done = {"status": TaskStatus.DONE.value}

        async def one(index: int) -> Task:
            return await update.execute(principal, ids[index], done)

        return _batch_answer(await _each(len(ids), one, s.etag_of), "completed")

    return complete_tasks


def _delete_tasks(s: McpServices) -> ToolFn:
    async def delete_tasks(
        tasks: Annotated[
            list[TaskToDelete], Field(description="1 to 50 tasks to move to the trash.")
        ],
    ) -> DeletedTasks:
        principal = _caller(Scope.TASKS_WRITE)
        _batch_size(tasks, "tasks")
        delete = s.delete_task()
        results: list[DeletedItem] = []
        for index, item in enumerate(tasks):
            task_id = item["id"]
            try:
                expected = s.expected_version(item.get("if_match"), task_id)
                await delete.execute(principal, task_id, expected)
            except DomainError as exc:
                results.append(DeletedItem(index=index, id=task_id, ok=False, error=problem(exc)))
            else:
                results.append(DeletedItem(index=index, id=task_id, ok=True))
        failed = sum(1 for r in results if not r["ok"])
        batch = DeletedTasks(results=results, succeeded=len(results) - failed, failed=failed)
        return _batch_answer(batch, "moved to the trash")

    return delete_tasks


def _restore_tasks(s: McpServices) -> ToolFn:
    async def restore_tasks(
        ids: Annotated[list[str], Field(description="1 to 50 ids of tasks in the trash.")],
    ) -> TaskBatch:
        principal = _caller(Scope.TASKS_WRITE)
        _batch_size(ids, "ids")
        restore = s.restore_task()

        async def one(index: int) -> Task:
            return await restore.execute(principal, ids[index])

        return _batch_answer(await _each(len(ids), one, s.etag_of), "restored")

    return restore_tasks


def _find_projects(s: McpServices) -> ToolFn:
    async def find_projects() -> ProjectListOut:
        principal = _caller(Scope.PROJECTS_READ)
        views = await s.list_projects().execute(principal)
        return ProjectListOut(items=[project_out(v, s.etag_of) for v in views])

    return find_projects


def _add_project(s: McpServices) -> ToolFn:
    async def add_project(
        name: Annotated[str, Field(description="1 to 200 characters after trimming.")],
        description: Annotated[str | None, Field(description="Up to 20,000 characters.")] = None,
    ) -> ProjectOut:
        principal = _caller(Scope.PROJECTS_WRITE)
        view = await s.create_project().execute(
            principal, ProjectDraft(name=name, description=description)
        )
        return project_out(view, s.etag_of)

    return add_project


def _add_comment(s: McpServices) -> ToolFn:
    async def add_comment(
        task_id: Annotated[str, Field(description="The task to comment on.")],
        body: Annotated[str, Field(description="1 to 10,000 characters.")],
    ) -> CommentOut:
        principal = _caller(Scope.TASKS_WRITE)
        return comment_out(await s.create_comment().execute(principal, task_id, body))

    return add_comment


def _find_comments(s: McpServices) -> ToolFn:
    async def find_comments(
        task_id: Annotated[str, Field(description="The task whose comments to read.")],
        limit: Annotated[
            int, Field(description="1 to 200 comments per page")
        ] = DEFAULT_COMMENT_PAGE,
        cursor: Annotated[
            str | None,
            Field(description="next_cursor of the previous page (of the same task), to read on."),
        ] = None,
    ) -> CommentPageOut:
        principal = _caller(Scope.TASKS_READ)
        after = s.comment_cursors.position(task_id, cursor) if cursor is not None else None
        page = await s.list_comments().execute(principal, task_id, after, limit)
        next_cursor = (
            s.comment_cursors.encode(task_id, page.next_position)
            if page.next_position is not None
            else None
        )
        return CommentPageOut(items=[comment_out(c) for c in page.items], next_cursor=next_cursor)

    return find_comments


def _find_activity(s: McpServices) -> ToolFn:
    async def find_activity(
        task_id: Annotated[
            str | None, Field(description="The task whose events to read (or give project_id).")
        ] = None,
        project_id: Annotated[
            str | None,
            Field(description="The project whose events (of every task, member, comment) to read."),
        ] = None,
        limit: Annotated[int, Field(description="1 to 200 events per page")] = (
            DEFAULT_ACTIVITY_PAGE
        ),
        cursor: Annotated[
            str | None,
            Field(description="next_cursor of the previous page (of the same list), to read on."),
        ] = None,
    ) -> ActivityPageOut:
        principal = _caller(Scope.TASKS_READ)
        if (task_id is None) == (project_id is None):
            raise Invalid.of("task_id", "give exactly one of task_id and project_id")
        list_id = f"task:{task_id}" if task_id is not None else f"project:{project_id}"
        after = s.activity_cursors.after(list_id, cursor) if cursor is not None else None
        if task_id is not None:
            page = await s.list_task_activity().execute(principal, task_id, after, limit)
        else:
            assert project_id is not None
            page = await s.list_project_activity().execute(principal, project_id, after, limit)
        next_cursor = (
            s.activity_cursors.encode(list_id, page.next_after)
            if page.next_after is not None
            else None
        )
        return ActivityPageOut(items=[dict(item) for item in page.items], next_cursor=next_cursor)

    return find_activity


TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec(
        "whoami",
        "Who am I",
        "The user this credential acts for, the credential, and its scopes. Call it first to "
        "see what the other tools may do.",
        None,
        ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False),
        _whoami,
    ),
    ToolSpec(
        "find-tasks",
        "Find tasks",
        "List the user's tasks, newest first unless `sort` says otherwise, filtered by status, "
        "priority, labels, due window and text (`q`). A page holds up to `limit` tasks; pass "
        "`next_cursor` back as `cursor` (with the same filters) for the next page.",
        Scope.TASKS_READ,
        READ_ONLY,
        _find_tasks,
    ),
    ToolSpec(
        "get-task",
        "Get a task",
        "One task by id, with its etag (pass it as `if_match` to update-tasks).",
        Scope.TASKS_READ,
        READ_ONLY,
        _get_task,
    ),
    ToolSpec(
        "add-tasks",
        "Add tasks",
        "Create 1 to 50 tasks. Each is created on its own: the result tells, per item, the new "
        "task or why it was refused. Give an `idempotency_key` to make a retry safe.",
        Scope.TASKS_WRITE,
        ToolAnnotations(
            read_only_hint=False,
            destructive_hint=False,
            idempotent_hint=False,
            open_world_hint=False,
        ),
        _add_tasks,
    ),
    ToolSpec(
        "update-tasks",
        "Update tasks",
        "Change 1 to 50 tasks, each with a merge patch (`changes`: fields left out stay; null "
        "clears description or due_at) and optionally the `if_match` etag it was read at, so a "
        "change made meanwhile is not overwritten. The result tells, per item, the task or why "
        "it was refused.",
        Scope.TASKS_WRITE,
        ToolAnnotations(
            read_only_hint=False,
            destructive_hint=True,
            idempotent_hint=True,
            open_world_hint=False,
        ),
        _update_tasks,
    ),
    ToolSpec(
        "complete-tasks",
        "Complete tasks",
        "Mark 1 to 50 tasks done (completed_at is set). A task already done stays as it is.",
        Scope.TASKS_WRITE,
        ToolAnnotations(
            read_only_hint=False,
            destructive_hint=False,
            idempotent_hint=True,
            open_world_hint=False,
        ),
        _complete_tasks,
    ),
    ToolSpec(
        "delete-tasks",
        "Delete tasks",
        "Move 1 to 50 tasks to the trash, each with its subtasks (editors and owners of its "
        "project). Optionally give the `if_match` etag each was read at, so a task changed "
        "meanwhile is not deleted. restore-tasks brings them back until the trash is purged "
        "(30 days by default). The result tells, per item, whether it went or why it was refused.",
        Scope.TASKS_WRITE,
        ToolAnnotations(
            read_only_hint=False,
            destructive_hint=True,
            idempotent_hint=True,
            open_world_hint=False,
        ),
        _delete_tasks,
    ),
    ToolSpec(
        "restore-tasks",
        "Restore tasks",
        "Bring 1 to 50 tasks back from the trash, each with the subtasks deleted with it (each "
        "gets a new version). A task whose parent is still in the trash is refused: restore the "
        "parent. The result tells, per item, the restored task or why it was refused.",
        Scope.TASKS_WRITE,
        ToolAnnotations(
            read_only_hint=False,
            destructive_hint=False,
            idempotent_hint=True,
            open_world_hint=False,
        ),
        _restore_tasks,
    ),
    ToolSpec(
        "find-projects",
        "Find projects",
        "The projects the user is a member of (those this credential reaches), oldest first, "
        "each with the user's role. A task's `project_id` names one of them.",
        Scope.PROJECTS_READ,
        ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False),
        _find_projects,
    ),
    ToolSpec(
        "add-project",
        "Add a project",
        "Create a project; the user becomes its only member and owner. Refused for a key "
        "restricted to projects.",
        Scope.PROJECTS_WRITE,
        ToolAnnotations(
            read_only_hint=False,
            destructive_hint=False,
            idempotent_hint=False,
            open_world_hint=False,
        ),
        _add_project,
    ),
    ToolSpec(
        "add-comment",
        "Comment on a task",
        "Add a comment to a task (editors and owners of its project; a viewer is refused).",
        Scope.TASKS_WRITE,
        ToolAnnotations(
            read_only_hint=False,
            destructive_hint=False,
            idempotent_hint=False,
            open_world_hint=False,
        ),
        _add_comment,
    ),
    ToolSpec(
        "find-comments",
        "Find comments",
        "A task's comments, oldest first. A page holds up to `limit` comments; pass "
        "`next_cursor` back as `cursor` (with the same `task_id`) for the next page.",
        Scope.TASKS_READ,
        ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False),
        _find_comments,
    ),
    ToolSpec(
        "find-activity",
        "Find activity",
        "What happened to a task (`task_id`, also while it is in the trash) or in a project "
        "(`project_id`): its events, oldest first, each with its type (task.created, "
        "task.updated, member.added, comment.created, ...), when, who, the resource after the "
        "change and, for updates, each field's from and to. A page holds up to `limit` events; "
        "pass `next_cursor` back as `cursor` (with the same id) for the next page.",
        Scope.TASKS_READ,
        ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False),
        _find_activity,
    ),
)
