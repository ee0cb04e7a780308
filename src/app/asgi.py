"""ASGI entry for uvicorn (`app.asgi:create`, a factory): settings from the environment."""

from __future__ import annotations

from litestar import Litestar

from app.factory import create_app
from app.settings import load_settings


def create() -> Litestar:
    return create_app(load_settings())
