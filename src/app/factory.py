"""create_app(settings): the Litestar application, wired from the container."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, nullcontext
from typing import Any

from litestar import Litestar
from litestar.config.cors import CORSConfig
from litestar.exceptions import MissingDependencyException
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, License, SecurityScheme, Server, Tag
from litestar.plugins import PluginProtocol
from litestar.plugins.core import MsgspecDIPlugin

from adapters.http.comments import CommentsController
from adapters.http.cors import ProblemCORSMiddleware
from adapters.http.docs import (
    DOCS_PATH,
    DocumentJsonPlugin,
    OfflineSwaggerPlugin,
    docs_assets,
    openapi_json,
)
from adapters.http.edges import HeadAsGet, UnderRootPath
from adapters.http.events import EVENT_CONTROLLERS
from adapters.http.health import OperationsController
from adapters.http.identity import ApiKeysController, SessionsController, UsersController
from adapters.http.metrics import (
    DB_POOL_CAPACITY,
    DB_POOL_CHECKED_OUT_NOW,
    DB_POOL_OVERFLOW_NOW,
    mark_worker_dead,
)
from adapters.http.middleware import RequestContextMiddleware
from adapters.http.problems import exception_handlers
from adapters.http.projects import ProjectsController
from adapters.http.services import SERVICES, ChangeStreams, Draining, Services
from adapters.http.task_batch import TaskBatchController
from adapters.http.tasks import TasksController
from adapters.http.trash import TrashController
from adapters.http.webhooks import WebhooksController
from adapters.sql.engine import watch_pool
from app.container import Container, build_container, close_container
from app.logs import configure_logging
from app.settings import Settings

MAX_BODY_BYTES = 1024 * 1024
GC_GEN0_THRESHOLD = 10_000

API_DESCRIPTION = """Taskhub: users, API keys, projects and tasks over HTTP.

Authenticate with `Authorization: Bearer <token>`: a session token from `POST /v1/auth/sessions`,
an API key (`thk_...`), or the service token with `X-Acting-User`. Errors are RFC 9457 problem
details (`application/problem+json`). Every response carries `X-Request-ID`.

AI assistants: `/mcp` is a Model Context Protocol endpoint (Streamable HTTP) with the same
bearer credentials, scopes and rate limits; it is not a REST resource and is not listed here.
"""
API_TAGS = {
    "operations": "Liveness, readiness and metrics: no authentication, no rate limit.",
    "users": "Sign-up and the calling user.",
    "sessions": "Log in and log out (session tokens).",
    "api-keys": "Scoped API keys: issue, list, revoke.",
    "tasks": "The task resource: create, list, read, change, delete.",
    "projects": "Shared projects and their members; roles owner, editor, viewer.",
    "comments": "Comments on tasks.",
    "webhooks": "Signed event deliveries to your URLs: subscriptions, secrets, the delivery log.",
    "events": "Activity of tasks and projects, and the change feed (pages and a stream).",
}


def settle_garbage_collector() -> None:
    """Once the app is built: move every object alive now (modules, routes, the OpenAPI model)
    out of the collector's reach, and collect the young generation less often, so that full
    collections of the start-up heap no longer pause a worker under load."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_GEN0_THRESHOLD, *gc.get_threshold()[1:])


class TaskhubLitestar(Litestar):
    """Litestar without the pydantic support it adds whenever pydantic is installed (here only
    for the MCP SDK): no handler takes or returns a pydantic model, and loading that support
    (pydantic.v1 included) costs every worker memory and start-up time. The other defaults
    stay as Litestar sets them."""

    @staticmethod
    def _get_default_plugins(plugins: list[PluginProtocol]) -> list[PluginProtocol]:
        plugins.append(MsgspecDIPlugin())
        with contextlib.suppress(MissingDependencyException):
            from litestar.plugins.attrs import AttrsSchemaPlugin

            if not any(isinstance(plugin, AttrsSchemaPlugin) for plugin in plugins):
                plugins.append(AttrsSchemaPlugin())
        return plugins


def _report_pool(checked_out: int, overflow: int) -> None:
    DB_POOL_CHECKED_OUT_NOW.set(checked_out)
    DB_POOL_OVERFLOW_NOW.set(overflow)


def services_of(container: Container, settings: Settings) -> Services:
    """Everything the handlers call, from the container: use-case factories and services."""
    return Services(
        admission=container.admission(),
        idempotency_store=container.idempotency_store(),
        idempotency_max_response_bytes=settings.IDEMPOTENCY_MAX_RESPONSE_BYTES,
        cursor_codec=container.cursor_codec(),
        search_slots=container.search_slots(),
        health_probes=container.health_probes(),
        health_timeout=settings.HEALTH_CHECK_TIMEOUT,
        draining=Draining(),
        register_user=container.register_user,
        log_in=container.log_in,
        log_out=container.log_out,
        get_current_user=container.get_current_user,
        issue_api_key=container.issue_api_key,
        list_api_keys=container.list_api_keys,
        revoke_api_key=container.revoke_api_key,
        create_task=container.create_task,
        get_task=container.get_task,
        list_tasks=container.list_tasks,
        update_task=container.update_task,
        delete_task=container.delete_task,
        run_task_batch=container.run_task_batch,
        list_trash=container.list_trash,
        restore_task=container.restore_task,
        delete_trashed_task=container.delete_trashed_task,
        create_project=container.create_project,
        list_projects=container.list_projects,
        get_project=container.get_project,
        update_project=container.update_project,
        delete_project=container.delete_project,
        list_members=container.list_members,
        add_member=container.add_member,
        update_member=container.update_member,
        remove_member=container.remove_member,
        create_comment=container.create_comment,
        list_comments=container.list_comments,
        delete_comment=container.delete_comment,
        create_webhook=container.create_webhook,
        list_webhooks=container.list_webhooks,
        get_webhook=container.get_webhook,
        update_webhook=container.update_webhook,
        delete_webhook=container.delete_webhook,
        rotate_webhook_secret=container.rotate_webhook_secret,
        ping_webhook=container.ping_webhook,
        list_deliveries=container.list_deliveries,
        get_delivery=container.get_delivery,
        redeliver=container.redeliver,
        list_task_activity=container.list_task_activity,
        list_project_activity=container.list_project_activity,
        read_changes=container.read_changes,
        change_streams=ChangeStreams(
            container.feed_signal(),
            settings.EVENT_STREAM_POLL_SECONDS,
            settings.EVENT_STREAM_KEEPALIVE_SECONDS,
        ),
    )


def create_app(
    settings: Settings, container: Container | None = None, *, run_worker: bool = False
) -> Litestar:
    """The app; with `run_worker` its lifespan also runs the worker loop in the process (stopped
    between two job steps at shutdown, before the connection pools close)."""
    configure_logging(settings)
    container = container or build_container(settings)

    extra_routes: list[Any] = []
    mcp_running: Any = nullcontext
    if settings.MCP_ENABLED:
        # The endpoint imports the MCP SDK on its first request, not here (LazyMcpEndpoint).
        from app.mcp import build_mcp, mcp_routes

        mcp = build_mcp(container, settings, MAX_BODY_BYTES)
        extra_routes, mcp_running = mcp_routes(mcp), mcp.running

    @asynccontextmanager
    async def lifespan(_app: Litestar) -> AsyncIterator[None]:
        worker = container.worker() if run_worker else None
        running = asyncio.create_task(worker.run()) if worker is not None else None
        try:
            async with mcp_running():
                yield
        finally:
            if worker is not None and running is not None:
                worker.stop()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(running, settings.SHUTDOWN_TIMEOUT_SECONDS)
            await close_container(container)
            mark_worker_dead(os.getpid())

    cors = (
        CORSConfig(
            allow_origins=list(settings.CORS_ORIGINS),
            allow_methods=["GET", "HEAD", "POST", "PATCH", "DELETE", "OPTIONS"],
            allow_headers=[
                "Authorization",
                "Content-Type",
                "If-Match",
                "If-None-Match",
                "Idempotency-Key",
                "X-Request-ID",
                "X-Acting-User",
            ],
            expose_headers=[
                "ETag",
                "Location",
                "Link",
                "X-Request-ID",
                "RateLimit-Limit",
                "RateLimit-Remaining",
                "RateLimit-Reset",
                "Retry-After",
            ],
        )
        if settings.CORS_ORIGINS
        else None
    )
    app = TaskhubLitestar(
        route_handlers=[
            OperationsController,
            openapi_json,
            docs_assets(),
            UsersController,
            SessionsController,
            ApiKeysController,
            TasksController,
            TaskBatchController,
            TrashController,
            ProjectsController,
            CommentsController,
            WebhooksController,
            *EVENT_CONTROLLERS,
            *extra_routes,
        ],
        exception_handlers=exception_handlers(),
        lifespan=[lifespan],
        request_max_body_size=MAX_BODY_BYTES,
        openapi_config=OpenAPIConfig(
            title="Taskhub API",
            version="1.0.0",
            description=API_DESCRIPTION,
            license=License(name="Proprietary"),
            tags=[Tag(name=name, description=text) for name, text in API_TAGS.items()],
            path=DOCS_PATH,
            servers=[Server(url=settings.ROOT_PATH or "/")],
            render_plugins=[OfflineSwaggerPlugin(), DocumentJsonPlugin(path="/openapi.json")],
            components=Components(
                security_schemes={
                    "bearer": SecurityScheme(
                        type="http",
                        scheme="bearer",
                        description="Session token, API key (thk_...) or service token.",
                    )
                }
            ),
        ),
        debug=False,
        logging_config=None,
    )
    # Outermost layers, around routing and error handling, so 404s and 500s get them too.
    handler: Any = app.asgi_handler
    inner: Any = HeadAsGet(handler)
    if cors is not None:
        # In place of Litestar's own CORS layer (at the same spot, around error handling), so
        # that a refused preflight is a problem+json answer.
        inner = ProblemCORSMiddleware(app=inner, config=cors)
    wrapped: Any = RequestContextMiddleware(inner)
    if settings.ROOT_PATH:
        wrapped = UnderRootPath(wrapped, settings.ROOT_PATH)
    app.asgi_handler = wrapped
    engine = container.engine()
    if engine is not None:
        watch_pool(engine, _report_pool)
        if not settings.is_sqlite:
            DB_POOL_CAPACITY.set(settings.SQLALCHEMY_POOL_SIZE + settings.SQLALCHEMY_POOL_OVERFLOW)
    app.state.container = container
    app.state[SERVICES] = services_of(container, settings)
    return app
