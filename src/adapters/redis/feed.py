"""Change-stream wake-ups across replicas: Redis pub/sub in front of the process's own signal.

`notify` wakes this process's streams at once and publishes on the channel; one subscription per
process (its own connection, no read timeout) wakes the local streams when any replica publishes.
Publishes are coalesced: one at a time per process, at most one per `spacing` seconds, and
commits made while one waits its turn share the next, so a busy writer sends a few a second
rather than one per commit, and none is left unsent (a wake-up is at most `spacing` late).
A lost subscription is re-established after a second; meanwhile streams still poll the feed, so
a wake-up is only ever late, never the only way an event gets through.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import structlog
from redis.asyncio import Redis

from domain.ports.events import FeedSignal

log = structlog.get_logger("taskhub.feed")


# Publishes of one process start at least this far apart (seconds): under a steady write load
# each one costs a round trip to Redis on the serving loop, and streams poll anyway.
PUBLISH_SPACING_SECONDS = 0.01


class RedisFeedSignal:
    """`local` is this process's own signal (the in-memory one), which the subscription feeds."""

    def __init__(
        self,
        client: Redis,
        url: str,
        prefix: str,
        local: FeedSignal,
        *,
        spacing: float = PUBLISH_SPACING_SECONDS,
    ) -> None:
        self._client = client
        self._url = url
        self._channel = f"{prefix}events".encode()
        self._local = local
        self._listener: asyncio.Task[None] | None = None
        self._closed = False
        self._publishing: set[asyncio.Task[Any]] = set()
        self._queued = False  # a publish is scheduled that has not started sending yet
        self._turn = asyncio.Lock()
        self._spacing = spacing
        self.published = 0

    def notify(self) -> None:
        self._local.notify()
        if self._queued:
            return  # the publish waiting its turn starts after this commit: it covers it
        try:
            task = asyncio.get_running_loop().create_task(self._publish())
        except RuntimeError:
            return  # no loop (a commit outside the server): nothing is streaming here
        self._queued = True
        self._publishing.add(task)
        task.add_done_callback(self._publishing.discard)

    async def _publish(self) -> None:
        async with self._turn:
            self._queued = False  # commits from here on need a publish after this one
            try:
                await self._client.publish(self._channel, b"1")
                self.published += 1
            except Exception as exc:
                log.warning("could not publish a change-stream wake-up", error=type(exc).__name__)
            if self._spacing > 0 and not self._closed:
                await asyncio.sleep(self._spacing)  # the turn is kept: later commits share one

    def ticket(self) -> object:
        if self._listener is None and not self._closed:
            self._listener = asyncio.get_running_loop().create_task(self._listen())
        return self._local.ticket()

    async def wait(self, ticket: object, within: float) -> bool:
        return await self._local.wait(ticket, within)

    async def _listen(self) -> None:
        while not self._closed:
            subscriber: Redis = Redis.from_url(self._url, socket_timeout=None)
            try:
                async with subscriber.pubsub() as pubsub:
                    await pubsub.subscribe(self._channel)
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            self._local.notify()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("change-stream subscription lost", error=type(exc).__name__)
                await asyncio.sleep(1.0)
            finally:
                with contextlib.suppress(Exception):
                    await subscriber.aclose()

    async def close(self) -> None:
        self._closed = True
        await self._local.close()
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.cancel()
            with contextlib.suppress(BaseException):
                await listener
