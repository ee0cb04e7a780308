"""Tasks over HTTP: the v1 task resource.

ETags name the task and its version (adapters.http.conditional); creation is idempotent with an
`Idempotency-Key` (adapters.http.idempotency).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response
from litestar.exceptions import ClientException
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, HeaderParameter, Parameter
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from adapters.http.auth import SCOPE_OPT, current_principal, principal_guard
from adapters.http.bodies import MERGE_PATCH_TYPES, decode_body
from adapters.http.conditional import etag_of, expected_version, not_modified
from adapters.http.cursors import cursor_payload, next_page_link, position_from_payload
from adapters.http.openapi import PROBLEMS, documented_body, documented_headers, documented_query
from adapters.http.responses import EncodedJson
from adapters.http.routing import delete, get, patch, post
from adapters.http.schemas import TaskCreate, TaskListQuery, TaskOut, TaskPage, TaskPatch
from adapters.http.services import services
from domain.auth import Scope
from domain.errors import FieldError, Invalid
from domain.task_queries import TaskFilter, TaskQuery
from domain.tasks import Task, TaskDraft
from domain.use_cases.task_search import list_tasks_within_slots

_encoder = msgspec.json.Encoder()


def task_out(task: Task) -> TaskOut:
    """The wire shape of a task, built only to be encoded: the status (a StrEnum) and the labels
    (a tuple) go in as they are, since msgspec writes an enum by its value and a tuple as an
    array: the same JSON without a new string and list per task (lists are pages of 50)."""
    return TaskOut(
        id=task.id,
        title=task.title,
        description=task.description,
        status=task.status,  # type: ignore[arg-type]
        priority=task.priority,
        labels=task.labels,  # type: ignore[arg-type]
        due_at=task.due_at,
        completed_at=task.completed_at,
        created_at=task.created_at,
        updated_at=task.updated_at,
        version=task.version,
        project_id=task.project_id,
        parent_id=task.parent_id,
        assignee_id=task.assignee_id,
    )


def task_response(
    task: Task, status: int = 200, extra: dict[str, str] | None = None
) -> EncodedJson:
    """The task as JSON (a TaskOut, encoded once) with its ETag."""
    headers = {"ETag": etag_of(task.id, task.version), **(extra or {})}
    return EncodedJson(_encoder.encode(task_out(task)), status_code=status, headers=headers)


def draft_of(body: TaskCreate) -> TaskDraft:
    """What a create body asks for (POST /v1/tasks, and a batch's create operation)."""
    return TaskDraft(
        title=body.title,
        description=body.description,
        status=body.status,
        priority=body.priority,
        labels=body.labels,
        due_at=body.due_at,
        project_id=body.project_id,
        parent_id=body.parent_id,
        assignee_id=body.assignee_id,
    )


def changes_of(body: TaskPatch) -> dict[str, object]:
    """The fields a merge patch names (PATCH /v1/tasks/{id}, and a batch's update operation)."""
    return {
        name: getattr(body, name)
        for name in body.__struct_fields__
        if getattr(body, name) is not msgspec.UNSET
    }


def _parse_time(name: str, value: str | None, errors: list[FieldError]) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        errors.append(FieldError(name, "must be an RFC 3339 date-time with an offset"))
        return None


def _parse_int(name: str, value: str | None, errors: list[FieldError]) -> int | None:
    if value is None:
        return None
    if re.fullmatch(r"[0-9]{1,4}", value):
        return int(value)
    errors.append(FieldError(name, "must be an integer"))
    return None


class TasksController(Controller):
    path = "/v1/tasks"
    tags = ["tasks"]
    guards = [principal_guard]
    security = [{"bearer": []}]

    @post(
        "/",
        idempotent=True,
        status_code=HTTP_201_CREATED,
        operation_id="createTask",
        summary="Create a task",
        description="The task goes into `project_id` (default: the caller's inbox; a key "
        "restricted to projects must name one, else 422): 404 when the caller is not a member "
        "of it (or the key does not reach it), 403 for a viewer. `parent_id` must be a task of "
        "the same project at most 5 levels deep, `assignee_id` a member of the project; else "
        "422 naming the field. "
        "An account holds at most MAX_TASKS_PER_USER tasks (default 100000, those in the trash "
        "included): one more is 409 `limit-reached` and creates nothing; deleting a task for "
        "good (`DELETE /v1/trash/{id}`) frees its place. "
        "With `Idempotency-Key`, a repeat with the same body returns the first answer "
        "(same id, `Idempotent-Replayed: true`) for 24 h; the same key with another body is 422; "
        "a repeat while the first is still running is 409 `conflict`. A first answer larger than "
        "IDEMPOTENCY_MAX_RESPONSE_BYTES is not kept: its repeat gets 303 See Other with the "
        "task's Location instead. 503 when the idempotency store is unreachable (rather than "
        "risk a duplicate).",
        opt={
            SCOPE_OPT: Scope.TASKS_WRITE,
            **documented_body(TaskCreate),
            **documented_headers({201: ("ETag", "Location", "Idempotent-Replayed")}),
        },
        responses=PROBLEMS(404, 409),
    )
    async def create(self, request: Request[Any, Any, Any]) -> Response[TaskOut]:
        body = await decode_body(request, TaskCreate)
        draft = draft_of(body)
        task = await services(request).create_task().execute(current_principal(request), draft)
        root = str(request.scope.get("root_path", ""))
        return task_response(task, HTTP_201_CREATED, {"Location": f"{root}/v1/tasks/{task.id}"})

    @get(
        "/",
        operation_id="listTasks",
        summary="List tasks (filters, sort, keyset pagination)",
        description="The tasks of every project the caller (and its key) may read. "
        "`project_id` narrows to one project (one the caller cannot read gives an empty list), "
        "`assignee_id` to a user id, `me` or `none`, `parent_id` to a task's direct subtasks "
        "or `none` (top-level tasks); a malformed `assignee_id` or `parent_id` is 422. "
        "Cursor pagination is stable: walking every page returns every matching task "
        "exactly once, even while tasks are added. `next_cursor` is null on the last page; the "
        'next page is also in `Link: <...>; rel="next"`. A tampered cursor is 400.',
        opt={
            SCOPE_OPT: Scope.TASKS_READ,
            **documented_query(TaskListQuery),
            **documented_headers({200: ("Link",)}),
        },
        responses=PROBLEMS(400, 422),
    )
    async def list_tasks(
        self,
        request: Request[Any, Any, Any],
        status: Annotated[str | None, Parameter(description="todo, in_progress or done")] = None,
        priority: Annotated[str | None, Parameter(description="1 to 4")] = None,
        label: Annotated[
            list[str] | None, Parameter(description="Repeatable; every label must match.")
        ] = None,
        due_before: Annotated[str | None, Parameter(description="due_at < this (RFC 3339)")] = None,
        due_after: Annotated[str | None, Parameter(description="due_at >= this (RFC 3339)")] = None,
        q: Annotated[str | None, Parameter(description="Text in title or description.")] = None,
        sort: Annotated[
            str,
            Parameter(
                description="created_at, -created_at (default), due_at, -due_at, priority, "
                "-priority, updated_at, -updated_at"
            ),
        ] = "-created_at",
        limit: Annotated[str, Parameter(description="1 to 200 (default 50)")] = "50",
        cursor: Annotated[
            str | None, Parameter(description="next_cursor of the previous page")
        ] = None,
        project_id: Annotated[
            str | None,
            Parameter(description="Only this project's tasks (one the caller cannot read: none)"),
        ] = None,
        assignee_id: Annotated[
            str | None, Parameter(description="A user id, me (the caller) or none (unassigned)")
        ] = None,
        parent_id: Annotated[
            str | None, Parameter(description="A task id (its direct subtasks) or none (top level)")
        ] = None,
    ) -> Response[TaskPage]:
        principal = current_principal(request)
        cursor_codec = services(request).cursor_codec
        errors: list[FieldError] = []
        before = _parse_time("due_before", due_before, errors)
        after = _parse_time("due_after", due_after, errors)
        prio = _parse_int("priority", priority, errors)
        size = _parse_int("limit", limit, errors)
        if errors:
            raise Invalid("invalid query parameters", errors)
        query = TaskQuery(
            filter=TaskFilter(
                status=status,  # type: ignore[arg-type]
                priority=prio,
                labels=tuple(label or ()),
                due_before=before,
                due_after=after,
                q=q,
                project_id=project_id,
                assignee_id=assignee_id,
                parent_id=parent_id,
            ),
            sort=sort,  # type: ignore[arg-type]
            limit=size if size is not None else 50,
        )
        if cursor is not None:
            payload = cursor_codec.decode(cursor)
            try:
                query = query.at(position_from_payload(payload, query))
            except Invalid as exc:
                raise ClientException(detail=exc.detail) from None
        found = services(request)
        page = await list_tasks_within_slots(
            found.search_slots, found.list_tasks(), principal, query
        )
        next_cursor = (
            cursor_codec.encode(cursor_payload(query, page.next_position))
            if page.next_position is not None
            else None
        )
        body = TaskPage(items=[task_out(t) for t in page.items], next_cursor=next_cursor)
        headers = {}
        if next_cursor is not None:
            headers["Link"] = next_page_link(request.scope, next_cursor)
        return EncodedJson(_encoder.encode(body), headers=headers)

    @get(
        "/{task_id:str}",
        operation_id="getTask",
        summary="Get a task",
        description="`If-None-Match` with the current ETag answers 304.",
        opt={SCOPE_OPT: Scope.TASKS_READ, **documented_headers({200: ("ETag",), 304: ("ETag",)})},
        responses={
            304: ResponseSpec(None, description="Not modified: the ETag still matches"),
            **PROBLEMS(404),
        },
    )
    async def get_task(
        self,
        request: Request[Any, Any, Any],
        task_id: FromPath[str],
        if_none_match: Annotated[str | None, HeaderParameter(name="If-None-Match")] = None,
    ) -> Response[TaskOut]:
        task = await services(request).get_task().execute(current_principal(request), task_id)
        tag = etag_of(task.id, task.version)
        if not_modified(if_none_match, tag):
            unchanged: Response[Any] = Response(b"", status_code=304, headers={"ETag": tag})
            return unchanged
        return task_response(task)

    @patch(
        "/{task_id:str}",
        operation_id="updateTask",
        summary="Update a task (JSON merge patch)",
        description="`application/merge-patch+json` or `application/json`. `null` clears "
        "description, due_at, parent_id or assignee_id; null for title, status, priority, labels "
        "or project_id is 422. Editors and owners of the task's project may patch (a viewer "
        "gets 403). A new `project_id` moves the task with all its subtasks (each gets a new "
        "version); it needs editor or owner in the target too (404 when not a member, 403 for a "
        "viewer), and the result's `parent_id` must be null or a task of the new project and "
        "its `assignee_id` null or a member of it (else 422 on that field). `If-Match` "
        "with a stale ETag is 412; 409 when another writer changed the task meanwhile and no "
        "`If-Match` was sent.",
        opt={
            SCOPE_OPT: Scope.TASKS_WRITE,
            **documented_body(TaskPatch, ("application/merge-patch+json", "application/json")),
            **documented_headers({200: ("ETag",)}),
        },
        responses=PROBLEMS(404, 409, 412),
    )
    async def update(
        self,
        request: Request[Any, Any, Any],
        task_id: FromPath[str],
        if_match: Annotated[str | None, HeaderParameter(name="If-Match")] = None,
    ) -> Response[TaskOut]:
        body = await decode_body(request, TaskPatch, MERGE_PATCH_TYPES)
        changes = changes_of(body)
        task = (
            await services(request)
            .update_task()
            .execute(
                current_principal(request),
                task_id,
                changes,
                expected_version(if_match, task_id),
            )
        )
        return task_response(task)

    @delete(
        "/{task_id:str}",
        status_code=HTTP_204_NO_CONTENT,
        operation_id="deleteTask",
        summary="Delete a task (to the trash)",
        description="Moves the task and all its subtasks to the trash (editor or owner of its "
        "project; a viewer gets 403): each gets a new version, and afterwards answers 404 and "
        "shows in no list, until restored (`POST /v1/trash/{id}/restore`). `If-Match` with a "
        "stale ETag is 412; 409 when another writer changed the task meanwhile and no "
        "`If-Match` was sent.",
        opt={SCOPE_OPT: Scope.TASKS_WRITE},
        responses=PROBLEMS(404, 409, 412),
    )
    async def delete_task(
        self,
        request: Request[Any, Any, Any],
        task_id: FromPath[str],
        if_match: Annotated[str | None, HeaderParameter(name="If-Match")] = None,
    ) -> None:
        await (
            services(request)
            .delete_task()
            .execute(current_principal(request), task_id, expected_version(if_match, task_id))
        )
