"""Tasks over HTTP: the v1 task resource (API.md "Tasks").

ETags are strong and name the task and its version (`"<id>.<version>"`), so `If-Match` maps to
the use case's optimistic-concurrency check without another read. Idempotent creation keeps the
first answer (status, body, Location, ETag) for 24 h per (user, Idempotency-Key).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlencode

import msgspec
import structlog
from litestar import Controller, Request, Response
from litestar.exceptions import ClientException
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, HeaderParameter, Parameter
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from adapters.http.auth import SCOPE_OPT, current_principal, principal_guard
from adapters.http.bodies import MERGE_PATCH_TYPES, decode_body
from adapters.http.cursors import CursorCodec
from adapters.http.openapi import PROBLEMS, documented_body
from adapters.http.responses import EncodedJson
from adapters.http.routing import delete, get, patch, post
from adapters.http.schemas import TaskCreate, TaskOut, TaskPage, TaskPatch
from domain.auth import Scope
from domain.errors import Conflict, FieldError, Invalid, Unavailable
from domain.ports import IdempotencyStore, StoredResponse
from domain.ports.tasks import TaskFilter, TaskQuery, cursor_payload, position_from_payload
from domain.tasks import Task, TaskDraft
from domain.use_cases.tasks import CreateTask, DeleteTask, GetTask, ListTasks, UpdateTask

log = structlog.get_logger("taskhub.tasks")

JSON = "application/json"
IDEMPOTENCY_TTL_SECONDS = 24 * 3600
# An in-flight claim outlives no crashed request by much: retries get 409 for this long at most.
IN_FLIGHT_TTL_SECONDS = 60
_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
_REPLAYED_HEADERS = ("location", "etag")
_encoder = msgspec.json.Encoder()


TASK_USE_CASES = "task_use_cases"


@dataclass(frozen=True, slots=True)
class TaskUseCases:
    """Factories of the task use cases (a fresh one per call), which the composition root puts
    in the app state under TASK_USE_CASES. The task handlers are the hot path: calling these is
    cheaper than Litestar's dependency resolution (a resolver, a cleanup stack and a conversion
    of the value per request), and a dependency without parameters adds nothing to the OpenAPI
    text."""

    create: Callable[[], CreateTask]
    get: Callable[[], GetTask]
    list: Callable[[], ListTasks]
    update: Callable[[], UpdateTask]
    delete: Callable[[], DeleteTask]


def use_cases(request: Request[Any, Any, Any]) -> TaskUseCases:
    found: TaskUseCases = request.app.state[TASK_USE_CASES]
    return found


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
    )


def etag_of(task: Task) -> str:
    return f'"{task.id}.{task.version}"'


def _tags(header: str, *, weak: bool) -> list[str]:
    """Entity tags of a header; weak ones (W/) count only for weak comparison (If-None-Match)."""
    tags = [t.strip() for t in header.split(",") if t.strip()]
    if weak:
        return [t.removeprefix("W/") for t in tags]
    return [t for t in tags if not t.startswith("W/")]


def expected_version(if_match: str | None, task_id: str) -> int | None:
    """The version an `If-Match` asks for: None when absent or `*`; -1 (always stale) when it
    names no version of this task."""
    if if_match is None or if_match.strip() == "*":
        return None
    for tag in _tags(if_match, weak=False):
        name, _, version = tag.strip('"').rpartition(".")
        if name == task_id and version.isdigit():
            return int(version)
    return -1


def task_response(
    task: Task, status: int = 200, extra: dict[str, str] | None = None
) -> EncodedJson:
    """The task as JSON (a TaskOut, encoded once) with its ETag."""
    headers = {"ETag": etag_of(task), **(extra or {})}
    return EncodedJson(_encoder.encode(task_out(task)), status_code=status, headers=headers)


def _request_path(request: Request[Any, Any, Any]) -> str:
    """The path as the client sent it, root path included: the scope's path carries the root
    path already (uvicorn, and the app's own root-path layer) or not (older servers)."""
    scope = request.scope
    root, path = str(scope.get("root_path", "")), str(scope["path"])
    return path if path == root or path.startswith(root + "/") else root + path


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
        status_code=HTTP_201_CREATED,
        summary="Create a task",
        description="With `Idempotency-Key`, a repeat with the same body returns the first answer "
        "(same id, `Idempotent-Replayed: true`) for 24 h; the same key with another body is 422; "
        "a repeat while the first is still running is 409. 503 when the idempotency store is "
        "unreachable (rather than risk a duplicate).",
        opt={SCOPE_OPT: Scope.TASKS_WRITE, **documented_body(TaskCreate)},
        responses=PROBLEMS(400, 401, 403, 409, 413, 415, 422, 429, 503),
    )
    async def create(
        self,
        request: Request[Any, Any, Any],
        idempotency_key: Annotated[
            str | None,
            HeaderParameter(name="Idempotency-Key", description="1-255 visible ASCII characters."),
        ] = None,
    ) -> Response[TaskOut]:
        principal = current_principal(request)
        body = await decode_body(request, TaskCreate)
        draft = TaskDraft(
            title=body.title,
            description=body.description,
            status=body.status,
            priority=body.priority,
            labels=body.labels,
            due_at=body.due_at,
        )
        if idempotency_key is None:
            return self._created(
                await use_cases(request).create().execute(principal.user_id, draft), request
            )
        if not _IDEMPOTENCY_KEY.match(idempotency_key):
            raise ClientException(detail="Idempotency-Key must be 1-255 visible ASCII characters")
        idempotency_store: IdempotencyStore = request.app.state.idempotency_store
        store_key = f"{principal.user_id}:{idempotency_key}"
        fingerprint = hashlib.sha256(_encoder.encode(body)).hexdigest()
        try:
            record = await idempotency_store.begin(store_key, fingerprint, IN_FLIGHT_TTL_SECONDS)
        except Exception as exc:
            log.warning("idempotency store unavailable", error=type(exc).__name__)
            raise Unavailable("Idempotency store unavailable; retry later.") from None
        if record is not None:
            if record.fingerprint != fingerprint:
                raise Invalid(
                    "Idempotency-Key was already used with a different request body.",
                    [FieldError("Idempotency-Key", "was used with a different body")],
                )
            if record.response is None:
                raise Conflict("A request with this Idempotency-Key is still in progress.")
            stored = record.response
            replay: Response[Any] = Response(
                stored.body,
                status_code=stored.status,
                media_type=JSON,
                headers={**dict(stored.headers), "Idempotent-Replayed": "true"},
            )
            return replay
        try:
            response = self._created(
                await use_cases(request).create().execute(principal.user_id, draft), request
            )
        except BaseException:
            try:
                await idempotency_store.release(store_key)
            except Exception as exc:
                log.warning("idempotency release failed", error=type(exc).__name__)
            raise
        stored = StoredResponse(
            status=HTTP_201_CREATED,
            body=response.content,
            headers=tuple(
                (k, v) for k, v in response.headers.items() if k.lower() in _REPLAYED_HEADERS
            ),
        )
        try:
            await idempotency_store.complete(
                store_key, fingerprint, stored, IDEMPOTENCY_TTL_SECONDS
            )
        except Exception as exc:
            log.warning("idempotency store unavailable after create", error=type(exc).__name__)
        return response

    @staticmethod
    def _created(task: Task, request: Request[Any, Any, Any]) -> EncodedJson:
        root = str(request.scope.get("root_path", ""))
        return task_response(task, HTTP_201_CREATED, {"Location": f"{root}/v1/tasks/{task.id}"})

    @get(
        "/",
        summary="List tasks (filters, sort, keyset pagination)",
        description="Cursor pagination is stable: walking every page returns every matching task "
        "exactly once, even while tasks are added. `next_cursor` is null on the last page; the "
        'next page is also in `Link: <...>; rel="next"`. A tampered cursor is 400.',
        opt={SCOPE_OPT: Scope.TASKS_READ},
        responses=PROBLEMS(400, 401, 403, 422, 429),
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
    ) -> Response[TaskPage]:
        principal = current_principal(request)
        cursor_codec: CursorCodec = request.app.state.cursor_codec
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
        page = await use_cases(request).list().execute(principal.user_id, query)
        next_cursor = (
            cursor_codec.encode(cursor_payload(query, page.next_position))
            if page.next_position is not None
            else None
        )
        body = TaskPage(items=[task_out(t) for t in page.items], next_cursor=next_cursor)
        headers = {}
        if next_cursor is not None:
            # The caller's own parameters in the caller's order (Litestar's parsed query
            # params come back grouped in an order that differs between processes).
            query_string = request.scope["query_string"].decode("latin-1")
            params = [
                (k, v) for k, v in parse_qsl(query_string, keep_blank_values=True) if k != "cursor"
            ]
            params.append(("cursor", next_cursor))
            headers["Link"] = f'<{_request_path(request)}?{urlencode(params)}>; rel="next"'
        return EncodedJson(_encoder.encode(body), headers=headers)

    @get(
        "/{task_id:str}",
        summary="Get a task",
        description="`If-None-Match` with the current ETag answers 304.",
        opt={SCOPE_OPT: Scope.TASKS_READ},
        responses={
            304: ResponseSpec(None, description="Not modified: the ETag still matches"),
            **PROBLEMS(400, 401, 403, 404, 429),
        },
    )
    async def get_task(
        self,
        request: Request[Any, Any, Any],
        task_id: FromPath[str],
        if_none_match: Annotated[str | None, HeaderParameter(name="If-None-Match")] = None,
    ) -> Response[TaskOut]:
        task = await use_cases(request).get().execute(current_principal(request).user_id, task_id)
        tag = etag_of(task)
        if if_none_match is not None and (
            if_none_match.strip() == "*" or tag in _tags(if_none_match, weak=True)
        ):
            not_modified: Response[Any] = Response(b"", status_code=304, headers={"ETag": tag})
            return not_modified
        return task_response(task)

    @patch(
        "/{task_id:str}",
        summary="Update a task (JSON merge patch)",
        description="`application/merge-patch+json` or `application/json`. `null` clears "
        "description or due_at; null for title, status, priority or labels is 422. `If-Match` "
        "with a stale ETag is 412.",
        opt={
            SCOPE_OPT: Scope.TASKS_WRITE,
            **documented_body(TaskPatch, ("application/merge-patch+json", "application/json")),
        },
        responses=PROBLEMS(400, 401, 403, 404, 412, 413, 415, 422, 429),
    )
    async def update(
        self,
        request: Request[Any, Any, Any],
        task_id: FromPath[str],
        if_match: Annotated[str | None, HeaderParameter(name="If-Match")] = None,
    ) -> Response[TaskOut]:
        body = await decode_body(request, TaskPatch, MERGE_PATCH_TYPES)
        changes = {
            name: getattr(body, name)
            for name in body.__struct_fields__
            if getattr(body, name) is not msgspec.UNSET
        }
        task = (
            await use_cases(request)
            .update()
            .execute(
                current_principal(request).user_id,
                task_id,
                changes,
                expected_version(if_match, task_id),
            )
        )
        return task_response(task)

    @delete(
        "/{task_id:str}",
        status_code=HTTP_204_NO_CONTENT,
        summary="Delete a task",
        description="`If-Match` with a stale ETag is 412. Afterwards the task is 404.",
        opt={SCOPE_OPT: Scope.TASKS_WRITE},
        responses=PROBLEMS(400, 401, 403, 404, 412, 429),
    )
    async def delete_task(
        self,
        request: Request[Any, Any, Any],
        task_id: FromPath[str],
        if_match: Annotated[str | None, HeaderParameter(name="If-Match")] = None,
    ) -> None:
        await (
            use_cases(request)
            .delete()
            .execute(
                current_principal(request).user_id, task_id, expected_version(if_match, task_id)
            )
        )
