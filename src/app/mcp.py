"""The MCP endpoint wired from the container: its services, its settings, and the two routes it
adds to the app (the mount at `/mcp` and its RFC 9728 protected-resource document). The endpoint
is built on its first request (`LazyMcpEndpoint`): the SDK is imported only then."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from litestar import Response, get
from litestar.exceptions import ClientException
from litestar.handlers import ASGIRouteHandler, HTTPRouteHandler, asgi

from adapters.http.comments import comment_cursor, comment_position
from adapters.http.conditional import etag_of, expected_version
from adapters.http.cursors import CursorCodec, cursor_payload, position_from_payload
from adapters.http.events import activity_after, activity_cursor
from adapters.http.logcontext import bind_request_log
from adapters.mcp.lazy import LazyMcpEndpoint
from adapters.mcp.services import McpServices
from app.container import Container
from app.settings import Settings
from domain.comments import CommentPosition
from domain.errors import Invalid
from domain.task_queries import CursorPosition, TaskQuery

if TYPE_CHECKING:
    from adapters.mcp.server import McpConfig, McpEndpoint

MCP_PATH = "/mcp"
LOCAL_HOSTS = ("127.0.0.1:*", "localhost:*", "[::1]:*")
LOCAL_ORIGINS = ("http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*")


class SignedTaskCursors:
    """The HTTP API's signed page cursors, so both transports read each other's."""

    def __init__(self, codec: CursorCodec) -> None:
        self._codec = codec

    def encode(self, query: TaskQuery, position: CursorPosition) -> str:
        return self._codec.encode(cursor_payload(query, position))

    def position(self, cursor: str, query: TaskQuery) -> CursorPosition:
        try:
            payload = self._codec.decode(cursor)
        except ClientException as exc:
            raise Invalid.of("cursor", "is malformed or was tampered with") from exc
        return position_from_payload(payload, query)


class SignedCommentCursors:
    """The HTTP API's comment cursors: each names its task, so it continues only that list."""

    def __init__(self, codec: CursorCodec) -> None:
        self._codec = codec

    def encode(self, task_id: str, position: CommentPosition) -> str:
        return comment_cursor(self._codec, task_id, position)

    def position(self, task_id: str, cursor: str) -> CommentPosition:
        try:
            return comment_position(self._codec, task_id, cursor)
        except ClientException as exc:
            # The HTTP detail reads "cursor: <why>"; the field error carries the why.
            why = str(exc.detail).removeprefix("cursor: ")
            raise Invalid.of("cursor", why) from exc


class SignedActivityCursors:
    """The HTTP API's activity cursors: each names its list (a task's or a project's)."""

    def __init__(self, codec: CursorCodec) -> None:
        self._codec = codec

    def encode(self, list_id: str, seq: int) -> str:
        return activity_cursor(self._codec, list_id, seq)

    def after(self, list_id: str, cursor: str) -> int:
        try:
            seq = activity_after(self._codec, list_id, cursor)
        except ClientException as exc:
            why = str(exc.detail).removeprefix("cursor: ")
            raise Invalid.of("cursor", why) from exc
        assert seq is not None
        return seq


def mcp_config(settings: Settings, max_body_bytes: int) -> McpConfig:
    """Where the endpoint is, and which Host and Origin values it answers: the local names, the
    public URL's host, MCP_ALLOWED_HOSTS and the CORS origins."""
    from adapters.mcp.server import McpConfig  # the SDK: see build_mcp

    public = settings.public_url
    parts = urlsplit(public)
    origin = f"{parts.scheme}://{parts.netloc}"
    hosts = [*LOCAL_HOSTS, parts.netloc, *settings.MCP_ALLOWED_HOSTS]
    if parts.port is None:
        hosts.append(f"{parts.netloc}:*")
    return McpConfig(
        resource_url=public + MCP_PATH,
        allowed_hosts=tuple(dict.fromkeys(hosts)),
        allowed_origins=tuple(dict.fromkeys([*LOCAL_ORIGINS, origin, *settings.CORS_ORIGINS])),
        state_secret=settings.secret("SESSION_HASH_SECRET").encode(),
        max_body_bytes=max_body_bytes,
    )


def mcp_services(container: Container) -> McpServices:
    return McpServices(
        admission=container.admission(),
        search_slots=container.search_slots(),
        cursors=SignedTaskCursors(container.cursor_codec()),
        comment_cursors=SignedCommentCursors(container.cursor_codec()),
        activity_cursors=SignedActivityCursors(container.cursor_codec()),
        etag_of=etag_of,
        expected_version=expected_version,
        bind_log=bind_request_log,
        run_once=container.run_once,
        get_current_user=container.get_current_user,
        create_task=container.create_task,
        run_task_batch=container.run_task_batch,
        get_task=container.get_task,
        list_tasks=container.list_tasks,
        update_task=container.update_task,
        delete_task=container.delete_task,
        restore_task=container.restore_task,
        list_projects=container.list_projects,
        create_project=container.create_project,
        create_comment=container.create_comment,
        list_comments=container.list_comments,
        list_task_activity=container.list_task_activity,
        list_project_activity=container.list_project_activity,
    )


def build_mcp(container: Container, settings: Settings, max_body_bytes: int) -> LazyMcpEndpoint:
    """The endpoint, built on its first request. The services come from the container now (in
    the event loop's thread); the SDK's import and the server's construction wait for then."""
    services = mcp_services(container)

    def build() -> McpEndpoint:
        from adapters.mcp.server import McpEndpoint

        return McpEndpoint(services, mcp_config(settings, max_body_bytes))

    return LazyMcpEndpoint(build)


def mcp_routes(lazy: LazyMcpEndpoint) -> list[ASGIRouteHandler | HTTPRouteHandler]:
    """The mount, and the protected-resource document at the root (RFC 9728 puts it at
    `/.well-known/oauth-protected-resource` + the endpoint's path, outside the mount)."""

    async def serve(scope: Any, receive: Any, send: Any) -> None:
        # The mount left the path below /mcp in the scope, which the request middleware logs
        # and counts once the answer is out: give it the endpoint's path and template back.
        inner = scope["path"]
        try:
            endpoint = await lazy.endpoint()
            await endpoint.app(dict(scope), receive, send)
        finally:
            scope["path"] = MCP_PATH if inner in ("", "/") else MCP_PATH + inner
            scope["path_template"] = MCP_PATH

    async def metadata() -> Response[dict[str, Any]]:
        document = (await lazy.endpoint()).protected_resource()
        return Response(document, headers={"Cache-Control": "public, max-age=3600"})

    return [
        asgi(MCP_PATH, is_mount=True, copy_scope=False, include_in_schema=False)(serve),
        get(
            f"/.well-known/oauth-protected-resource{MCP_PATH}",
            include_in_schema=False,
        )(metadata),
    ]
