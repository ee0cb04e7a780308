"""Events over HTTP: task and project activity, the change feed and its event stream.

Handlers parse, call one use case, map. Activity is a cursor list (oldest first) whose cursor
names its list; the change feed's cursor is the feed position itself (`next_cursor`, an event's
`id:` on the stream), so a page and the stream continue one another.

The stream (`text/event-stream`) reads the feed in a loop: after each read that found nothing
new it waits for a wake-up (a commit on any replica, `FeedSignal`) or the poll interval, whichever
comes first, and writes a `: keep-alive` comment when it has been quiet for the keep-alive
interval. It ends at once when the process starts draining, so it never holds a shutdown up.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlencode

import msgspec
from litestar import Controller, Request, Response
from litestar.exceptions import ClientException
from litestar.params import HeaderParameter, Parameter, PathParameter
from litestar.response import Stream

from adapters.http.auth import current_principal, principal_guard
from adapters.http.cursors import CursorCodec, next_page_link, request_path
from adapters.http.edges import HEAD_ONLY
from adapters.http.metrics import (
    FEED_READS,
    STREAM_DELIVERY_LATENCY,
    STREAMS_OPEN,
)
from adapters.http.openapi import PROBLEMS, documented_headers, documented_query
from adapters.http.responses import EncodedJson
from adapters.http.routing import get
from adapters.http.schemas import (
    ActivityPage,
    ChangesPage,
    ChangesQuery,
    ChangesStreamQuery,
    ProjectActivityQuery,
    TaskActivityQuery,
)
from adapters.http.services import ChangeStreams, Draining, services
from domain.errors import Invalid
from domain.ports.feed import FeedItem
from domain.use_cases.events import (
    DEFAULT_ACTIVITY_PAGE,
    DEFAULT_FEED_PAGE,
    MAX_FEED_PAGE,
    ReadChanges,
)
from domain.use_cases.events import (
    ActivityPage as ActivityResult,
)

_encoder = msgspec.json.Encoder()
_ACTIVITY_KIND = "activity"
_LIMIT = re.compile(r"[0-9]{1,4}")


def _limit(value: str) -> int:
    if not _LIMIT.fullmatch(value):
        raise Invalid.of("limit", "must be an integer")
    return int(value)


def activity_cursor(codec: CursorCodec, list_id: str, seq: int) -> str:
    return codec.encode({"k": _ACTIVITY_KIND, "l": list_id, "s": seq})


def activity_after(codec: CursorCodec, list_id: str, cursor: str | None) -> int | None:
    """The event number an activity cursor of this list names; 400 for anything else."""
    if cursor is None:
        return None
    payload = codec.decode(cursor)
    if (
        not isinstance(payload, dict)
        or payload.get("k") != _ACTIVITY_KIND
        or payload.get("l") != list_id
        or not isinstance(payload.get("s"), int)
    ):
        raise ClientException(detail="cursor: is not a cursor of this list")
    seq: int = payload["s"]
    return seq


def _activity_response(
    request: Request[Any, Any, Any], codec: CursorCodec, list_id: str, page: ActivityResult
) -> Response[ActivityPage]:
    next_cursor = (
        activity_cursor(codec, list_id, page.next_after) if page.next_after is not None else None
    )
    headers = {"Link": next_page_link(request.scope, next_cursor)} if next_cursor else {}
    body = {"items": list(page.items), "next_cursor": next_cursor}
    return EncodedJson(_encoder.encode(body), headers=headers)


_ACTIVITY_TEXT = (
    "Oldest first, a page at a time: `next_cursor` is null on the last page; the next page is "
    'also in `Link: <...>; rel="next"`. A malformed cursor, or one of another list, is 400; a '
    "`limit` outside 1-200 is 422."
)
_LimitParam = Annotated[str, Parameter(description="1 to 200 (default 50)")]
_CursorParam = Annotated[str | None, Parameter(description="next_cursor of the previous page")]


class TaskActivityController(Controller):
    path = "/v1/tasks/{task_id:str}/activity"
    tags = ["events"]
    guards = [principal_guard]
    security = [{"bearer": []}]

    @get(
        "/",
        operation_id="listTaskActivity",
        summary="A task's events, oldest first",
        description="Any member of the task's project (tasks:read); also while the task is in "
        "the trash. " + _ACTIVITY_TEXT,
        opt={**documented_query(TaskActivityQuery), **documented_headers({200: ("Link",)})},
        responses=PROBLEMS(400, 403, 404, 422),
    )
    async def list_activity(
        self,
        request: Request[Any, Any, Any],
        task_id: Annotated[str, PathParameter(description="The task's id.")],
        limit: _LimitParam = str(DEFAULT_ACTIVITY_PAGE),
        cursor: _CursorParam = None,
    ) -> Response[ActivityPage]:
        found = services(request)
        size = _limit(limit)
        after = activity_after(found.cursor_codec, f"task:{task_id}", cursor)
        page = await found.list_task_activity().execute(
            current_principal(request), task_id, after, size
        )
        return _activity_response(request, found.cursor_codec, f"task:{task_id}", page)


class ProjectActivityController(Controller):
    path = "/v1/projects/{project_id:str}/activity"
    tags = ["events"]
    guards = [principal_guard]
    security = [{"bearer": []}]

    @get(
        "/",
        operation_id="listProjectActivity",
        summary="A project's events (every resource in it), oldest first",
        description="Any member of the project (tasks:read). " + _ACTIVITY_TEXT,
        opt={**documented_query(ProjectActivityQuery), **documented_headers({200: ("Link",)})},
        responses=PROBLEMS(400, 403, 404, 422),
    )
    async def list_activity(
        self,
        request: Request[Any, Any, Any],
        project_id: Annotated[str, PathParameter(description="The project's id.")],
        limit: _LimitParam = str(DEFAULT_ACTIVITY_PAGE),
        cursor: _CursorParam = None,
    ) -> Response[ActivityPage]:
        found = services(request)
        size = _limit(limit)
        after = activity_after(found.cursor_codec, f"project:{project_id}", cursor)
        page = await found.list_project_activity().execute(
            current_principal(request), project_id, after, size
        )
        return _activity_response(request, found.cursor_codec, f"project:{project_id}", page)


def _after_link(scope: Mapping[str, Any], next_cursor: str) -> str:
    """`Link` to the next page of the feed: this request with `after` replaced."""
    query_string = scope["query_string"].decode("latin-1")
    params = [(k, v) for k, v in parse_qsl(query_string, keep_blank_values=True) if k != "after"]
    params.append(("after", next_cursor))
    return f'<{request_path(scope)}?{urlencode(params)}>; rel="next"'


_FEED_TEXT = (
    "Needs tasks:read and projects:read. Events of the projects the caller (and its key) can "
    "read now, in commit order: walking the cursors yields every committed event exactly once. "
    "A removed member still gets their `member.removed` event (and the members of a deleted "
    "project its `project.deleted`), nothing later. `after`: a `next_cursor`, or `now`; "
    "without it the feed starts at the oldest kept event. An `after` that is no cursor is 422; "
    "one older than the oldest kept event (EVENT_RETENTION_DAYS) is 410 (type ending "
    "`/cursor-expired`): start again without `after`."
)
_AfterParam = Annotated[
    str | None, Parameter(description="A next_cursor, or `now` (default: the oldest kept event)")
]


def _sse(item: FeedItem) -> bytes:
    data = _encoder.encode(item.body)
    return b"id: %s\nevent: %s\ndata: %s\n\n" % (item.position.encode(), item.type.encode(), data)


async def _stream(
    read: ReadChanges,
    caller: Any,
    first: tuple[object, list[FeedItem], str],
    streams: ChangeStreams,
    draining: Draining,
) -> AsyncIterator[bytes]:
    """The stream body. Each read comes after a wake-up ticket was taken, so a commit after
    the read wakes the wait at once; the poll interval bounds a wait whose wake-up got lost."""
    ticket, items, position = first
    signal = streams.signal
    quiet_since = time.monotonic()
    STREAMS_OPEN.inc()
    try:
        yield b": stream of changes; resume with Last-Event-ID\n\n"
        while True:
            if items:
                now = datetime.now(UTC)
                for item in items:
                    lag = (now - item.occurred_at).total_seconds()
                    STREAM_DELIVERY_LATENCY.observe(max(0.0, lag))
                    yield _sse(item)
                quiet_since = time.monotonic()
            if draining.active:
                break
            if len(items) < MAX_FEED_PAGE:
                await signal.wait(ticket, streams.poll_seconds)
                if draining.active:
                    break
                if time.monotonic() - quiet_since >= streams.keepalive_seconds:
                    quiet_since = time.monotonic()
                    yield b": keep-alive\n\n"
            ticket = signal.ticket()
            page = await read.execute(caller, position, MAX_FEED_PAGE)
            FEED_READS.labels("stream").inc()
            items, position = list(page.items), page.next_position
    finally:
        STREAMS_OPEN.dec()


_HEAD_ANSWERED = Draining()
_HEAD_ANSWERED.begin()


class ChangesController(Controller):
    path = "/v1/changes"
    tags = ["events"]
    guards = [principal_guard]
    security = [{"bearer": []}]

    @get(
        "/",
        operation_id="listChanges",
        summary="The change feed: events in commit order, a page at a time",
        description=_FEED_TEXT + " `next_cursor` is never null (also in "
        '`Link: <...>; rel="next"`); `limit` is 1-500 (default 100).',
        opt={**documented_query(ChangesQuery), **documented_headers({200: ("Link",)})},
        responses=PROBLEMS(403, 410, 422),
    )
    async def list_changes(
        self,
        request: Request[Any, Any, Any],
        after: _AfterParam = None,
        limit: Annotated[str, Parameter(description="1 to 500 (default 100)")] = str(
            DEFAULT_FEED_PAGE
        ),
    ) -> Response[ChangesPage]:
        size = _limit(limit)
        page = (
            await services(request).read_changes().execute(current_principal(request), after, size)
        )
        FEED_READS.labels("page").inc()
        body = {"items": [item.body for item in page.items], "next_cursor": page.next_position}
        headers = {"Link": _after_link(request.scope, page.next_position)}
        return EncodedJson(_encoder.encode(body), headers=headers)

    @get(
        "/stream",
        operation_id="streamChanges",
        summary="The change feed as a server-sent event stream",
        description=_FEED_TEXT + " Each event is `id: <cursor>`, `event: <type>`, "
        "`data: <event JSON>`; resume with `Last-Event-ID` (or `?after=`). A `: keep-alive` "
        "comment comes at least every 15 s. A committed event reaches every open stream, on "
        "any replica, within a second. The stream ends when the serving process shuts down: "
        "reconnect with `Last-Event-ID`.",
        media_type="text/event-stream",
        opt={**documented_query(ChangesStreamQuery)},
        responses=PROBLEMS(403, 410, 422),
    )
    async def stream_changes(
        self,
        request: Request[Any, Any, Any],
        after: _AfterParam = None,
        last_event_id: Annotated[
            str | None,
            HeaderParameter(name="Last-Event-ID", description="The id of the last event received."),
        ] = None,
    ) -> Stream:
        found = services(request)
        read: ReadChanges = found.read_changes()
        caller = current_principal(request)
        # The first read answers errors (scopes, a bad or expired cursor) as problem+json.
        ticket = found.change_streams.signal.ticket()
        page = await read.execute(caller, last_event_id or after, MAX_FEED_PAGE)
        FEED_READS.labels("stream").inc()
        first = (ticket, list(page.items), page.next_position)
        draining = found.draining
        if request.scope.get("state", {}).get(HEAD_ONLY):
            draining = _HEAD_ANSWERED  # a HEAD gets the headers, not an endless body
        return Stream(
            _stream(read, caller, first, found.change_streams, draining),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )


EVENT_CONTROLLERS: tuple[type[Controller], ...] = (
    TaskActivityController,
    ProjectActivityController,
    ChangesController,
)
