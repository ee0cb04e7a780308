"""Draining on SIGTERM, inside each serving process (every uvicorn worker gets the signal).

The server (uvicorn) installs its own SIGTERM handler before the app starts; this wraps it. At
SIGTERM, readiness flips to 503 `draining` at once and the server keeps serving; after the drain
period the server's own handler runs, which stops accepting connections and lets in-flight
requests finish within its graceful-shutdown timeout. A repeated SIGTERM during the drain (a
supervisor that signals the whole process group as well as forwarding) changes nothing; SIGINT
still stops at once.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from types import FrameType
from typing import Any

import structlog

from adapters.http.services import Draining

log = structlog.get_logger("taskhub.shutdown")


def drain_on_sigterm(draining: Draining, drain_seconds: float) -> None:
    """Wrap the running server's SIGTERM handler (call from the app's startup, in its loop)."""
    if threading.current_thread() is not threading.main_thread():
        return  # signals reach only the main thread: nothing to wrap
    server_handler: Any = signal.getsignal(signal.SIGTERM)
    if not callable(server_handler):
        return  # no server handler to hand over to (not run by a server that captures signals)
    loop = asyncio.get_running_loop()

    def stop(signum: int) -> None:
        log.info("drain over: no longer accepting connections")
        server_handler(signum, None)

    def drain(signum: int) -> None:
        log.info("SIGTERM: draining", drain_seconds=drain_seconds)
        loop.call_later(drain_seconds, stop, signum)

    def on_sigterm(signum: int, _frame: FrameType | None) -> None:
        if draining.active:
            return
        draining.begin()
        # A signal handler may interrupt the loop anywhere: schedule through the thread-safe door.
        loop.call_soon_threadsafe(drain, signum)

    signal.signal(signal.SIGTERM, on_sigterm)
