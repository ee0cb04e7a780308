"""JSON answers encoded once, up front, and sent as they are (the hot task endpoints).

`EncodedJson` is a Litestar `Response` (so a handler still declares `Response[TaskOut]` and the
OpenAPI text is unchanged) whose content is already JSON bytes (msgspec, as Litestar would have
encoded it). Turning it into the ASGI answer skips Litestar's re-rendering and its header objects:
the raw header list is built directly, in the order Litestar would send it (the handler's headers
lower-cased, then `content-type`, then `content-length`). When a layer adds headers or cookies,
or for a HEAD answer, it falls back to Litestar's general path.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from litestar import Response
from litestar.response.base import ASGIResponse

if TYPE_CHECKING:
    from collections.abc import Iterable

    from litestar import Litestar, Request
    from litestar.background_tasks import BackgroundTask, BackgroundTasks
    from litestar.datastructures import Cookie
    from litestar.types import Receive, Scope, Send, TypeEncodersMap

JSON = "application/json"
_NO_BODY = frozenset({204, 304})


class EncodedJson(Response[Any]):
    """A response whose body is JSON already; only for statuses that carry a body."""

    __slots__ = ()

    def __init__(
        self, body: bytes, *, status_code: int = 200, headers: dict[str, str] | None = None
    ) -> None:
        if status_code in _NO_BODY or status_code < 200:
            raise ValueError(f"EncodedJson is for answers with a body, not {status_code}")
        # Response.__init__'s work (cookie and header objects, encoders) is not needed here: the
        # attributes are set as it would set them.
        self.content = body
        self.status_code: int = status_code
        self.headers = headers if headers is not None else {}
        self.media_type = JSON
        self.background = None
        self.cookies = []
        self.encoding = "utf-8"
        self.response_type_encoders = {}

    def to_asgi_response(
        self,
        app: Litestar | None,
        request: Request[Any, Any, Any],
        *,
        background: BackgroundTask | BackgroundTasks | None = None,
        cookies: Iterable[Cookie] | None = None,
        encoded_headers: Iterable[tuple[bytes, bytes]] | None = None,
        headers: dict[str, str] | None = None,
        is_head_response: bool = False,
        media_type: Any = None,
        status_code: int | None = None,
        type_encoders: TypeEncodersMap | None = None,
    ) -> ASGIResponse:
        if (
            app is not None
            or background
            or cookies
            or encoded_headers
            or headers
            or is_head_response
        ):
            return super().to_asgi_response(
                app,
                request,
                background=background,
                cookies=cookies,
                encoded_headers=encoded_headers,
                headers=headers,
                is_head_response=is_head_response,
                media_type=media_type,
                status_code=status_code,
                type_encoders=type_encoders,
            )
        raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in self.headers.items()]
        raw.append((b"content-type", b"application/json"))
        raw.append((b"content-length", str(len(self.content)).encode("latin-1")))
        return _SendAsIs(status_code=self.status_code, raw_headers=raw, body=self.content)


class _SendAsIs(ASGIResponse):
    """Status, raw headers and body, sent in two ASGI messages."""

    __slots__ = ("_raw_headers",)

    def __init__(
        self, status_code: int, raw_headers: list[tuple[bytes, bytes]], body: bytes
    ) -> None:
        # Not ASGIResponse.__init__: the headers are encoded already.
        self.status_code = status_code
        self.body = body
        self._raw_headers = raw_headers
        self.background = None
        self.is_head_response = False

    def encode_headers(self) -> list[tuple[bytes, bytes]]:
        return self._raw_headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:  # noqa: ARG002
        await send(
            {
                "type": "http.response.start",
                "status": self.status_code,
                "headers": self._raw_headers,
            }
        )
        await send({"type": "http.response.body", "body": self.body, "more_body": False})
