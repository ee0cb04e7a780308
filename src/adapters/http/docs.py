"""The API documentation: `/openapi.json` and the Swagger UI page at `/docs`, served whole by
the service itself.

Swagger UI's script, style sheet and icon come from the pinned `swagger-ui-bundle-v2` package
and are served under `/docs/assets/`, so the page renders on machines without internet access.
The page embeds the same document as `/openapi.json` (request bodies and shared answers
included, see openapi.py).
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Litestar, Request, Response, get
from litestar.openapi.plugins import JsonRenderPlugin, SwaggerRenderPlugin
from litestar.router import Router
from litestar.static_files import create_static_files_router
from swagger_ui_bundle import swagger_ui_path

from adapters.http.openapi import describe_api

DOCS_PATH = "/docs"
ASSETS_PATH = f"{DOCS_PATH}/assets"
OPENAPI_MEDIA_TYPE = "application/vnd.oai.openapi+json"


def openapi_document(app: Litestar) -> bytes:
    """The OpenAPI document of `app`, made once and kept in its state."""
    cached: bytes | None = app.state.get("openapi_document")
    if cached is None:
        schema = describe_api(app, app.openapi_schema.to_schema())
        cached = app.state.openapi_document = msgspec.json.encode(schema)
    return cached


@get("/openapi.json", include_in_schema=False, media_type=OPENAPI_MEDIA_TYPE)
async def openapi_json(request: Request[Any, Any, Any]) -> Response[bytes]:
    """The OpenAPI 3.1 document at the root as well as under /docs."""
    return Response(openapi_document(request.app), media_type=OPENAPI_MEDIA_TYPE)


class DocumentJsonPlugin(JsonRenderPlugin):
    """/docs/openapi.json: the same document as /openapi.json."""

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:  # noqa: ARG002
        return openapi_document(request.app)


class OfflineSwaggerPlugin(SwaggerRenderPlugin):
    """Swagger UI whose assets are the service's own (ASSETS_PATH), showing the served
    document rather than Litestar's bare one."""

    def __init__(self) -> None:
        super().__init__(
            path="/",
            js_url=f"{ASSETS_PATH}/swagger-ui-bundle.js",
            css_url=f"{ASSETS_PATH}/swagger-ui.css",
            standalone_preset_js_url=f"{ASSETS_PATH}/swagger-ui-standalone-preset.js",
            favicon=f"<link rel='icon' type='image/png' href='{ASSETS_PATH}/favicon-32x32.png'>",
        )

    @staticmethod
    def render_json(request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:  # noqa: ARG004
        return openapi_document(request.app)


def docs_assets() -> Router:
    """GET /docs/assets/<file>: Swagger UI's files from the installed package."""
    return create_static_files_router(
        path=ASSETS_PATH, directories=[swagger_ui_path], name="docs-assets"
    )
