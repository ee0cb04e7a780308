"""ASGI wrappers at the edge of the app: serving under a path prefix, and HEAD for every GET."""

from __future__ import annotations

from adapters.http.middleware import ASGIApp, Message, Receive, Scope, Send


class UnderRootPath:
    """Serve under `root_path` (e.g. `/taskhub`), whether or not the proxy in front strips the
    prefix: requests arrive as `/taskhub/v1/...` or `/v1/...` and the app sees the former, with
    `scope["root_path"]` set, so routing strips it and links (Location, Link, the OpenAPI
    servers) carry it."""

    def __init__(self, app: ASGIApp, root_path: str) -> None:
        self.app = app
        self.root_path = root_path
        self._raw_root = root_path.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            root = self.root_path
            path: str = scope["path"]
            if path != root and not path.startswith(root + "/"):
                scope["path"] = root + path
                raw = scope.get("raw_path")
                if raw is not None:
                    scope["raw_path"] = self._raw_root + raw
            scope["root_path"] = root
        await self.app(scope, receive, send)


HEAD_ONLY = "head_only"


class HeadAsGet:
    """HEAD works wherever GET does: the GET handler runs, the answer keeps its status and
    headers (Content-Length included) and loses its body. The scope says HEAD again once the
    app is done, for the access line and the metrics."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        scope["method"] = "GET"
        # Handlers of endless answers (the change stream) answer a HEAD with their headers only.
        scope.setdefault("state", {})[HEAD_ONLY] = True
        try:
            await self.app(scope, receive, headers_only)
        finally:
            scope["method"] = "HEAD"
