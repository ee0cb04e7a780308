"""ASGI entry for uvicorn (`app.asgi:create`, a factory): settings from the environment."""

from __future__ import annotations

import ctypes
import os

from litestar import Litestar

from adapters.http.services import SERVICES, Services
from app.draining import drain_on_sigterm
from app.factory import create_app, settle_garbage_collector
from app.settings import load_settings

MALLOC_ARENAS = 2
M_ARENA_MAX = -8  # glibc's mallopt parameter number


def limit_malloc_arenas() -> None:
    """At most MALLOC_ARENAS glibc malloc arenas, unless MALLOC_ARENA_MAX (or GLIBC_TUNABLES)
    sets the number: by default every thread that allocates (the event loop's executor, the MCP
    endpoint's build) may get an arena of its own, whose pages stay resident. Elsewhere than
    glibc, nothing."""
    if "MALLOC_ARENA_MAX" in os.environ or "arena_max" in os.environ.get("GLIBC_TUNABLES", ""):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    libc.mallopt(M_ARENA_MAX, MALLOC_ARENAS)


def create() -> Litestar:
    """The served app (each uvicorn worker builds one). Only a serving process limits malloc's
    arenas, settles the garbage collector, drains on SIGTERM and runs the worker loop (unless
    SERVE_WORKER=false): tests and tools that build apps keep the default behaviour."""
    limit_malloc_arenas()
    settings = load_settings()
    app = create_app(settings, run_worker=settings.SERVE_WORKER)
    found: Services = app.state[SERVICES]
    draining = found.draining
    app.on_startup.append(lambda: drain_on_sigterm(draining, settings.SHUTDOWN_DRAIN_SECONDS))
    settle_garbage_collector()
    return app
