"""Comments on tasks over HTTP: parse, call one use case, map.

Who may write, read or delete a comment is the access policy's business, reached through the
use cases. A task's comments are a cursor list, oldest first; a cursor names its task, so it
continues only the list it was made for.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response
from litestar.params import Parameter, PathParameter
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from adapters.http.auth import current_principal, principal_guard
from adapters.http.bodies import decode_body
from adapters.http.cursors import CursorCodec, moment_cursor, moment_position, next_page_link
from adapters.http.openapi import PROBLEMS, documented_body, documented_headers, documented_query
from adapters.http.responses import EncodedJson
from adapters.http.routing import delete, get, post
from adapters.http.schemas import CommentCreate, CommentListQuery, CommentOut, CommentPage
from adapters.http.services import services
from domain.comments import Comment, CommentPosition
from domain.errors import Invalid
from domain.use_cases.projects import DEFAULT_COMMENT_PAGE

_encoder = msgspec.json.Encoder()
_CURSOR_KIND = "comments"

TaskId = Annotated[str, PathParameter(description="The task's id.")]


def comment_out(comment: Comment) -> CommentOut:
    return CommentOut(
        id=comment.id,
        task_id=comment.task_id,
        author_id=comment.author_id,
        body=comment.body,
        created_at=comment.created_at,
    )


def comment_cursor(codec: CursorCodec, task_id: str, position: CommentPosition) -> str:
    return moment_cursor(codec, _CURSOR_KIND, {"t": task_id}, position.created_at, position.id)


def comment_position(codec: CursorCodec, task_id: str, cursor: str) -> CommentPosition:
    """The position a comment cursor of this task names; 400 for anything else."""
    return CommentPosition(*moment_position(codec, _CURSOR_KIND, {"t": task_id}, cursor))


class CommentsController(Controller):
    path = "/v1/tasks/{task_id:str}/comments"
    tags = ["comments"]
    guards = [principal_guard]
    security = [{"bearer": []}]

    @post(
        "/",
        idempotent=True,
        status_code=HTTP_201_CREATED,
        operation_id="createComment",
        summary="Comment on a task",
        description="Editors and owners of the task's project (tasks:write); a viewer gets 403, "
        "anyone else 404. `Idempotency-Key` works as on `POST /v1/tasks`.",
        opt={
            **documented_body(CommentCreate),
            **documented_headers({201: ("Idempotent-Replayed",)}),
        },
        responses=PROBLEMS(403, 404, 409),
    )
    async def create(
        self, request: Request[Any, Any, Any], task_id: TaskId
    ) -> Response[CommentOut]:
        body = await decode_body(request, CommentCreate)
        comment = (
            await services(request)
            .create_comment()
            .execute(current_principal(request), task_id, body.body)
        )
        return EncodedJson(_encoder.encode(comment_out(comment)), status_code=HTTP_201_CREATED)

    @get(
        "/",
        operation_id="listComments",
        summary="List a task's comments, oldest first, a page at a time",
        description="Any member of the task's project (tasks:read). `next_cursor` is null on "
        'the last page; the next page is also in `Link: <...>; rel="next"`. A malformed or '
        "tampered cursor, or one of another task's list, is 400; a `limit` outside 1-200 is 422.",
        opt={**documented_query(CommentListQuery), **documented_headers({200: ("Link",)})},
        responses=PROBLEMS(400, 403, 404, 422),
    )
    async def list_comments(
        self,
        request: Request[Any, Any, Any],
        task_id: TaskId,
        limit: Annotated[str, Parameter(description="1 to 200 (default 50)")] = str(
            DEFAULT_COMMENT_PAGE
        ),
        cursor: Annotated[
            str | None, Parameter(description="next_cursor of the previous page")
        ] = None,
    ) -> Response[CommentPage]:
        found = services(request)
        if not re.fullmatch(r"[0-9]{1,4}", limit):
            raise Invalid.of("limit", "must be an integer")
        after = (
            comment_position(found.cursor_codec, task_id, cursor) if cursor is not None else None
        )
        page = await found.list_comments().execute(
            current_principal(request), task_id, after, int(limit)
        )
        next_cursor = (
            comment_cursor(found.cursor_codec, task_id, page.next_position)
            if page.next_position is not None
            else None
        )
        headers = {}
        if next_cursor is not None:
            headers["Link"] = next_page_link(request.scope, next_cursor)
        body = CommentPage(items=[comment_out(c) for c in page.items], next_cursor=next_cursor)
        return EncodedJson(_encoder.encode(body), headers=headers)

    @delete(
        "/{comment_id:str}",
        status_code=HTTP_204_NO_CONTENT,
        operation_id="deleteComment",
        summary="Delete a comment",
        description="Its author (an editor or owner) or any owner of the project (tasks:write). "
        "404 for a comment of another task, or one you cannot read.",
        responses=PROBLEMS(403, 404),
    )
    async def delete_comment(
        self,
        request: Request[Any, Any, Any],
        task_id: TaskId,
        comment_id: Annotated[str, PathParameter(description="The comment's id.")],
    ) -> None:
        await (
            services(request)
            .delete_comment()
            .execute(current_principal(request), task_id, comment_id)
        )
