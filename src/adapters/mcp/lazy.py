"""The MCP endpoint, built on its first request, so that a worker loads the SDK only once it
serves MCP.

The SDK (and pydantic, which it brings) is a large part of a worker's start-up time and tens of
MiB of its memory. The first request to the endpoint builds it in a thread, so the event loop keeps
serving meanwhile; requests that arrive during the build wait for the same one. The SDK's
session manager runs in a task that the host app's lifespan owns: it enters the manager once the
endpoint is built and leaves it when the lifespan ends. This module imports no SDK code.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from adapters.mcp.server import McpEndpoint


class McpNotRunning(RuntimeError):
    """A request reached the endpoint outside the host app's lifespan."""


class LazyMcpEndpoint:
    """`running()` goes into the host app's lifespan; `endpoint()` is the built endpoint, with
    its session manager running, for as long as that lifespan lasts."""

    def __init__(self, build: Callable[[], McpEndpoint]) -> None:
        self._build = build
        self._built: McpEndpoint | None = None
        self._wanted: asyncio.Event | None = None
        self._ready: asyncio.Future[McpEndpoint] | None = None

    @property
    def built(self) -> bool:
        return self._built is not None

    async def endpoint(self) -> McpEndpoint:
        """The endpoint, built (once per process) and running (once per lifespan)."""
        if self._wanted is None or self._ready is None:
            raise McpNotRunning("the MCP endpoint answers only while the app's lifespan runs")
        self._wanted.set()
        # Shielded: a caller that goes away must not cancel the build the others wait for.
        return await asyncio.shield(self._ready)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        wanted, stop = asyncio.Event(), asyncio.Event()
        ready: asyncio.Future[McpEndpoint] = asyncio.get_running_loop().create_future()
        keeper = asyncio.create_task(self._keep(wanted, stop, ready))
        self._wanted, self._ready = wanted, ready
        try:
            yield
        finally:
            self._wanted = self._ready = None
            stop.set()
            await keeper
            if not ready.done():
                ready.set_exception(McpNotRunning("the app's lifespan ended"))
            # Retrieved here, so an unawaited failure is not reported as never retrieved.
            with suppress(BaseException):
                ready.exception()

    async def _keep(
        self, wanted: asyncio.Event, stop: asyncio.Event, ready: asyncio.Future[McpEndpoint]
    ) -> None:
        if not await _first_of(wanted, stop):
            return
        try:
            if self._built is None:
                self._built = await asyncio.to_thread(self._build)
                if gc.get_freeze_count():
                    # The process moved its start-up heap out of the collector's reach; the SDK's
                    # modules and the server live as long, so they join it.
                    gc.freeze()
            endpoint = self._built
            async with endpoint.running():
                ready.set_result(endpoint)
                await stop.wait()
        except Exception as exc:
            if ready.done():
                raise
            ready.set_exception(exc)


async def _first_of(wanted: asyncio.Event, stop: asyncio.Event) -> bool:
    """Wait until the endpoint is wanted (True) or the lifespan ends first (False)."""
    waits = [asyncio.create_task(wanted.wait()), asyncio.create_task(stop.wait())]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiting in waits:
            waiting.cancel()
    return wanted.is_set() and not stop.is_set()
