"""ASGI entry for uvicorn (`app.asgi:create`, a factory): settings from the environment."""

from __future__ import annotations

from litestar import Litestar

from app.factory import create_app, settle_garbage_collector
from app.settings import load_settings


def create() -> Litestar:
    """The served app (each uvicorn worker builds one). Only a serving process settles the
    garbage collector: tests and tools that build apps keep the default behaviour."""
    app = create_app(load_settings())
    settle_garbage_collector()
    return app
