"""EncodedJson sends exactly what Litestar's Response would send for the same content."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest
from litestar import Litestar, Response, get
from litestar.datastructures import ResponseHeader

from adapters.http.responses import EncodedJson
from adapters.http.schemas import TaskOut, TaskPage
from adapters.http.tasks import task_out
from domain.tasks import Task, TaskStatus

TASK = TaskOut(
    id="01a20125-5808-769c-95da-07901e446490",
    title="a task",
    description=None,
    status="in_progress",
    priority=3,
    labels=["a", "b"],
    due_at=datetime(2026, 1, 2, 3, 4, 5, 678900, tzinfo=UTC),
    completed_at=None,
    created_at=datetime(2026, 1, 1, tzinfo=UTC),
    updated_at=datetime(2026, 1, 1, 0, 0, 1, tzinfo=UTC),
    version=7,
    project_id="01a20125-5808-769c-95da-07901e446491",
    parent_id=None,
    assignee_id="01a20125-5808-769c-95da-07901e446492",
)
HEADERS = {"ETag": '"01a20125-5808-769c-95da-07901e446490.7"', "Location": "/v1/tasks/x"}


def sent(app: Litestar, path: str) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    scope = {
        "type": "http",
        "method": "GET",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [(b"host", b"test")],
        "http_version": "1.1",
        "scheme": "http",
        "server": ("test", 80),
        "client": ("127.0.0.1", 1),
        "root_path": "",
        "asgi": {"version": "3.0"},
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        messages.append(dict(message))

    asyncio.run(app(scope, receive, send))  # type: ignore[arg-type]
    return messages


@pytest.mark.parametrize(
    ("content", "status", "headers"),
    [
        (TASK, 200, {"ETag": HEADERS["ETag"]}),
        (TASK, 201, HEADERS),
        (TaskPage(items=[TASK, TASK], next_cursor=None), 200, {}),
        (
            TaskPage(items=[], next_cursor="abc"),
            200,
            {"Link": '</v1/tasks?cursor=abc>; rel="next"'},
        ),
    ],
)
def test_the_same_bytes_and_headers_as_litestar(
    content: msgspec.Struct, status: int, headers: dict[str, str]
) -> None:
    @get("/litestar", sync_to_thread=False)
    def litestar_way() -> Response[Any]:
        return Response(content, status_code=status, media_type="application/json", headers=headers)

    @get("/encoded", sync_to_thread=False)
    def encoded_way() -> Response[Any]:
        return EncodedJson(msgspec.json.encode(content), status_code=status, headers=headers)

    app = Litestar([litestar_way, encoded_way], openapi_config=None)
    assert sent(app, "/encoded") == sent(app, "/litestar")
    assert sent(app, "/encoded")[0]["status"] == status


def test_layer_headers_take_litestars_general_path() -> None:
    @get(
        "/encoded",
        sync_to_thread=False,
        response_headers=[ResponseHeader(name="X-Layer", value="1")],
    )
    def encoded_way() -> Response[Any]:
        return EncodedJson(b'{"a":1}', headers={"ETag": '"x"'})

    start, body = sent(Litestar([encoded_way], openapi_config=None), "/encoded")
    assert dict(start["headers"])[b"x-layer"] == b"1"
    assert dict(start["headers"])[b"etag"] == b'"x"'
    assert body["body"] == b'{"a":1}'


@pytest.mark.parametrize("status", [204, 304, 101])
def test_only_for_answers_with_a_body(status: int) -> None:
    with pytest.raises(ValueError, match="with a body"):
        EncodedJson(b"", status_code=status)


def test_a_task_encodes_as_its_wire_shape_with_plain_strings_and_lists() -> None:
    task = Task(
        id=TASK.id,
        owner_id="someone",
        project_id=TASK.project_id,
        assignee_id=TASK.assignee_id,
        title=TASK.title,
        description=TASK.description,
        status=TaskStatus.IN_PROGRESS,
        priority=TASK.priority,
        labels=("a", "b"),
        due_at=TASK.due_at,
        completed_at=TASK.completed_at,
        created_at=TASK.created_at,
        updated_at=TASK.updated_at,
        version=TASK.version,
    )
    assert msgspec.json.encode(task_out(task)) == msgspec.json.encode(TASK)
    assert b"someone" not in msgspec.json.encode(task_out(task))
