"""The trash over HTTP: list what was deleted, restore it, or delete it for good.

`DELETE /v1/tasks/{id}` puts a task there (`adapters.http.tasks`). The list is a cursor list,
newest `deleted_at` first; a cursor names its `project_id` filter, so it continues only the list
it was made for.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response
from litestar.params import Parameter, PathParameter
from litestar.status_codes import HTTP_204_NO_CONTENT

from adapters.http.auth import SCOPE_OPT, current_principal, principal_guard
from adapters.http.cursors import CursorCodec, moment_cursor, moment_position, next_page_link
from adapters.http.openapi import PROBLEMS, documented_headers, documented_query
from adapters.http.responses import EncodedJson
from adapters.http.routing import delete, get, post
from adapters.http.schemas import TaskOut, TrashedTaskOut, TrashListQuery, TrashPage
from adapters.http.services import services
from adapters.http.tasks import task_out, task_response
from domain.auth import Scope
from domain.errors import Invalid
from domain.trash import DEFAULT_TRASH_PAGE, TrashedTask, TrashPosition

_encoder = msgspec.json.Encoder()
_CURSOR_KIND = "trash"

TaskId = Annotated[str, PathParameter(description="The trashed task's id.")]


def trashed_out(trashed: TrashedTask) -> TrashedTaskOut:
    task = task_out(trashed.task)
    fields = {name: getattr(task, name) for name in task.__struct_fields__}
    return TrashedTaskOut(**fields, deleted_at=trashed.deleted_at)


def trash_cursor(codec: CursorCodec, project_id: str | None, position: TrashPosition) -> str:
    return moment_cursor(codec, _CURSOR_KIND, {"p": project_id}, position.deleted_at, position.id)


def trash_position(codec: CursorCodec, project_id: str | None, cursor: str) -> TrashPosition:
    """The position a trash cursor of this filter names; 400 for anything else."""
    return TrashPosition(*moment_position(codec, _CURSOR_KIND, {"p": project_id}, cursor))


class TrashController(Controller):
    path = "/v1/trash"
    tags = ["trash"]
    guards = [principal_guard]
    security = [{"bearer": []}]

    @get(
        "/",
        operation_id="listTrash",
        summary="List the trash, newest first, a page at a time",
        description="The tasks in the trash of every project the caller (and its key) may "
        "read, viewers included: each task as it was deleted plus `deleted_at`, newest first. "
        "A deleted task's subtasks are listed too. `project_id` narrows to one project (one "
        "the caller cannot read gives an empty list). `next_cursor` is null on the last page; "
        'the next page is also in `Link: <...>; rel="next"`. A malformed or tampered cursor, '
        "or one of another filter, is 400; a `limit` outside 1-200 is 422. Trashed tasks are "
        "deleted for good TRASH_RETENTION_DAYS (default 30) after their deletion.",
        opt={
            SCOPE_OPT: Scope.TASKS_READ,
            **documented_query(TrashListQuery),
            **documented_headers({200: ("Link",)}),
        },
        responses=PROBLEMS(400, 422),
    )
    async def list_trash(
        self,
        request: Request[Any, Any, Any],
        project_id: Annotated[
            str | None,
            Parameter(description="Only this project's trash (one the caller cannot read: none)"),
        ] = None,
        limit: Annotated[str, Parameter(description="1 to 200 (default 50)")] = str(
            DEFAULT_TRASH_PAGE
        ),
        cursor: Annotated[
            str | None, Parameter(description="next_cursor of the previous page")
        ] = None,
    ) -> Response[TrashPage]:
        found = services(request)
        if not re.fullmatch(r"[0-9]{1,4}", limit):
            raise Invalid.of("limit", "must be an integer")
        codec = found.cursor_codec
        after = trash_position(codec, project_id, cursor) if cursor is not None else None
        page = await found.list_trash().execute(
            current_principal(request), project_id=project_id, after=after, limit=int(limit)
        )
        next_cursor = (
            trash_cursor(codec, project_id, page.next_position)
            if page.next_position is not None
            else None
        )
        headers = {}
        if next_cursor is not None:
            headers["Link"] = next_page_link(request.scope, next_cursor)
        body = TrashPage(items=[trashed_out(t) for t in page.items], next_cursor=next_cursor)
        return EncodedJson(_encoder.encode(body), headers=headers)

    @post(
        "/{task_id:str}/restore",
        status_code=200,
        operation_id="restoreTask",
        summary="Restore a task from the trash",
        description="Editors and owners of the task's project (a viewer gets 403; 404 when the "
        "task is not in the trash or the caller cannot read its project). The task comes back "
        "with the subtasks deleted with it, each with a new `version`; subtasks deleted on "
        "their own before stay in the trash. 409 when its parent task is still in the trash "
        "(restore that one first), or when another request restored or deleted it meanwhile.",
        opt={SCOPE_OPT: Scope.TASKS_WRITE, **documented_headers({200: ("ETag",)})},
        responses=PROBLEMS(404, 409),
    )
    async def restore(self, request: Request[Any, Any, Any], task_id: TaskId) -> Response[TaskOut]:
        task = await services(request).restore_task().execute(current_principal(request), task_id)
        return task_response(task)

    @delete(
        "/{task_id:str}",
        status_code=HTTP_204_NO_CONTENT,
        operation_id="deleteTrashedTask",
        summary="Delete a task in the trash for good",
        description="Editors and owners of the task's project (a viewer gets 403; 404 when the "
        "task is not in the trash or the caller cannot read its project). The task and its "
        "subtasks are gone for good, with their comments; each frees its place under its "
        "creator's MAX_TASKS_PER_USER. 409 when another request restored or deleted it "
        "meanwhile.",
        opt={SCOPE_OPT: Scope.TASKS_WRITE},
        responses=PROBLEMS(404, 409),
    )
    async def delete_for_good(self, request: Request[Any, Any, Any], task_id: TaskId) -> None:
        await services(request).delete_trashed_task().execute(current_principal(request), task_id)
