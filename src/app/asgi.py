"""ASGI entry for uvicorn (`app.asgi:create`, a factory): settings from the environment."""

from __future__ import annotations

from litestar import Litestar

from adapters.http.services import SERVICES, Services
from app.draining import drain_on_sigterm
from app.factory import create_app, settle_garbage_collector
from app.settings import load_settings


def create() -> Litestar:
    """The served app (each uvicorn worker builds one). Only a serving process settles the
    garbage collector, drains on SIGTERM and runs the worker loop (unless SERVE_WORKER=false):
    tests and tools that build apps keep the default behaviour."""
    settings = load_settings()
    app = create_app(settings, run_worker=settings.SERVE_WORKER)
    found: Services = app.state[SERVICES]
    draining = found.draining
    app.on_startup.append(lambda: drain_on_sigterm(draining, settings.SHUTDOWN_DRAIN_SECONDS))
    settle_garbage_collector()
    return app
