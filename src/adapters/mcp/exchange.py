"""One handshake-era (2025) request over stateless Streamable HTTP, answered in the request's own
task: what the SDK's per-request transport does in JSON-response mode, without the transport.

In stateless mode the SDK builds, for every POST, a transport with its memory streams, a
message-router task, a JSON-RPC dispatcher and its task group, and hands the request across them
to a task of its own. With JSON answers and no session there is nothing for that machinery to
carry but the one request and its one response, so a plain request is served here as the SDK's
2026 entry serves its requests: the same kernel (`ServerRunner`, with the server's middleware), a
dispatch context with no back-channel (as the transport stamps it in JSON-response mode:
server-initiated requests raise `NoBackChannelError`, notifications have no wire and are
dropped), the dispatcher's exception-to-error ladder, and the response written once.

Anything else goes to the SDK's own handler unchanged (the body replayed): another method than
POST, a request the transport would refuse (Host, Origin, Accept, Content-Type, a body that is
not one JSON-RPC request), notifications and responses (answered 202), and `initialize`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import anyio
import msgspec
import pydantic_core
from mcp.server.connection import Connection
from mcp.server.context import HandlerResult
from mcp.server.lowlevel.server import Server
from mcp.server.runner import ServerRunner, aclose_shielded
from mcp.server.streamable_http import check_accept_headers
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecurityMiddleware
from mcp.shared.dispatcher import CallOptions
from mcp.shared.exceptions import NoBackChannelError
from mcp.shared.jsonrpc_dispatcher import (
    handler_exception_to_error_data,
    progress_token_from_params,
)
from mcp.shared.message import ServerMessageMetadata
from mcp.shared.transport_context import TransportContext
from mcp_types import (
    DEFAULT_NEGOTIATED_VERSION,
    CallToolResult,
    ErrorData,
    JSONRPCError,
    JSONRPCRequest,
    JSONRPCResponse,
    ProgressToken,
    RequestId,
    jsonrpc_message_adapter,
)
from mcp_types import methods as spec_methods
from pydantic import ValidationError
from starlette.requests import Request

logger = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
StatelessHandler = Callable[[str | None, Scope, Receive, Send], Awaitable[None]]

_JSON = "application/json"
_HEADERS_JSON = (b"content-type", b"application/json")
_encode = msgspec.json.Encoder().encode


class WireResult(CallToolResult):
    """A tool result whose structured content is plain JSON values already (dicts with string
    keys, lists, strings, numbers, booleans, null), as the SDK's JSON-mode dump would make them."""


class _Runner(ServerRunner[Any]):
    """The SDK's kernel, but a `WireResult`'s structured content is not walked twice more to
    make the JSON values it already is: the rest of the result goes through the SDK's own
    shaping, the structured content takes the place of an empty stand-in."""

    def _serialize(self, method: str, version: str, result: HandlerResult) -> dict[str, Any]:
        if not isinstance(result, WireResult) or result.structured_content is None:
            return super()._serialize(method, version, result)
        content = result.structured_content
        stand_in = result.model_copy(update={"structured_content": {}})
        dumped = super()._serialize(method, version, stand_in)
        if "structuredContent" in dumped:
            dumped["structuredContent"] = content
        return dumped


@dataclass
class _NoBackChannel:
    """The dispatch context of one request whose answer is a single JSON body."""

    transport: TransportContext
    request_id: RequestId
    message_metadata: ServerMessageMetadata
    progress_token: ProgressToken | None = None
    cancel_requested: anyio.Event = field(default_factory=anyio.Event)
    can_send_request: bool = field(default=False, init=False)

    async def send_raw_request(
        self, method: str, params: Mapping[str, Any] | None, opts: CallOptions | None = None
    ) -> dict[str, Any]:
        del params, opts
        raise NoBackChannelError(method)

    async def notify(
        self, method: str, params: Mapping[str, Any] | None, opts: CallOptions | None = None
    ) -> None:
        del params, opts
        logger.debug("dropped %s: a JSON answer carries only the response", method)

    async def progress(
        self, progress: float, total: float | None = None, message: str | None = None
    ) -> None:
        """A progress notification has no wire either."""


def _is_json(content_type: str) -> bool:
    """The transport's Content-Type test: `application/json` among the media types."""
    return any(part.strip() == _JSON for part in content_type.split(";")[0].split(","))


class SingleExchange:
    """The manager's stateless handler for handshake-era requests (see the module's text)."""

    def __init__(self, manager: StreamableHTTPSessionManager) -> None:
        if not manager.stateless or not manager.json_response:
            raise ValueError("a single exchange serves stateless JSON-response endpoints only")
        self._server: Server[Any] = manager.app
        self._manager = manager
        self._security = TransportSecurityMiddleware(manager.security_settings)
        # The SDK's handler, for what this one leaves to it (no public name for it).
        self._sdk: StatelessHandler = manager._handle_stateless_request  # noqa: SLF001

    def install(self) -> None:
        """Take the place of the manager's stateless handler (it stays the fallback)."""
        setattr(self._manager, "_handle_stateless_request", self)  # noqa: B010 (a method)

    async def __call__(
        self, version: str | None, scope: Scope, receive: Receive, send: Send
    ) -> None:
        if scope["method"] != "POST":
            await self._sdk(version, scope, receive, send)
            return
        request = Request(scope, receive)
        headers = request.headers
        if (
            await self._security.validate_request(request, is_post=True) is not None
            or not check_accept_headers(request)[0]
            or not _is_json(headers.get("content-type", ""))
        ):
            await self._sdk(version, scope, receive, send)
            return
        body = await request.body()
        message = _plain_request(body)
        if message is None:
            await self._sdk(version, scope, _replay(body, receive), send)
            return
        await self._serve(version, request, message, send)

    async def _serve(
        self, version: str | None, request: Request, message: JSONRPCRequest, send: Send
    ) -> None:
        dctx = _NoBackChannel(
            transport=TransportContext(kind="streamable-http", can_send_request=False),
            request_id=message.id,
            message_metadata=ServerMessageMetadata(request_context=request, can_send_request=False),
            progress_token=progress_token_from_params(message.params),
        )
        connection = Connection.from_envelope(version or DEFAULT_NEGOTIATED_VERSION, None, None)
        # The server's lifespan state, entered once by the manager (no public name for it).
        lifespan_state = self._manager._lifespan_state  # noqa: SLF001
        runner = _Runner(self._server, connection, lifespan_state)
        try:
            result = await runner.on_request(dctx, message.method, message.params)
        except Exception as exc:
            error = handler_exception_to_error_data(exc)
            if error is None:
                # The dispatcher's catch-all, as the SDK answers it on this era's wire.
                logger.exception("handler for %r raised", message.method)
                error = ErrorData(code=0, message=str(exc))
            answer = JSONRPCError(jsonrpc="2.0", id=message.id, error=error)
            body = answer.model_dump_json(by_alias=True, exclude_unset=True).encode()
        else:
            body = _response_body(message, result)
        finally:
            await aclose_shielded(connection)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [_HEADERS_JSON, (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _plain_request(body: bytes) -> JSONRPCRequest | None:
    """The body as one JSON-RPC request this path serves, or None for the SDK to answer."""
    try:
        message = jsonrpc_message_adapter.validate_python(
            pydantic_core.from_json(body), by_name=False
        )
    except (ValueError, ValidationError):
        return None
    if not isinstance(message, JSONRPCRequest) or message.method == "initialize":
        return None
    return message


def _response_body(message: JSONRPCRequest, result: dict[str, Any]) -> bytes:
    """The JSON-RPC response. A spec method's result is the kernel's JSON-mode dump (plain JSON
    values), which msgspec writes as pydantic would, in one pass; anything else is written by
    the SDK's own model."""
    if message.method in spec_methods.SPEC_CLIENT_METHODS:
        return _encode({"jsonrpc": "2.0", "id": message.id, "result": result})
    answer = JSONRPCResponse(jsonrpc="2.0", id=message.id, result=result)
    return answer.model_dump_json(by_alias=True, exclude_unset=True).encode()


def _replay(body: bytes, receive: Receive) -> Receive:
    """`receive` with the body already read given back first."""
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def again() -> Message:
        return pending.pop() if pending else await receive()

    return again
