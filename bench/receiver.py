"""A local webhook receiver for the benches: a keep-alive HTTP/1.1 endpoint on 127.0.0.1 that
answers 204 at once to every request and counts them. With `keep=True` it also keeps each
request (the wall-clock time it was read in full, its headers, its body) for later analysis,
so checking signatures or parsing bodies costs nothing while deliveries arrive.

`Receiver` runs on the caller's event loop; `ThreadedReceiver` runs one on an event loop of its
own in a daemon thread, for synchronous code (`bench.run`).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from types import TracebackType


@dataclass(frozen=True, slots=True)
class Arrival:
    at: float  # time.time() once the whole request was read
    headers: dict[str, str]  # names in lower case
    body: bytes


class Receiver:
    def __init__(self, *, keep: bool = False) -> None:
        self.count = 0
        self.arrivals: list[Arrival] = []
        self.url = ""
        self._keep = keep
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._answer, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/hook"
        return self.url

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):  # keep-alive connections the server leaves open
            writer.close()

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                headers: dict[str, str] = {}
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name:
                        headers[name.decode("latin-1").lower()] = value.strip().decode("latin-1")
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                self.count += 1
                if self._keep:
                    self.arrivals.append(Arrival(time.time(), headers, body))
                writer.write(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()


@contextlib.asynccontextmanager
async def local_receiver(*, keep: bool = False) -> AsyncIterator[Receiver]:
    receiver = Receiver(keep=keep)
    await receiver.start()
    try:
        yield receiver
    finally:
        await receiver.stop()


class ThreadedReceiver:
    """`with ThreadedReceiver() as receiver:` a `Receiver` serving from a thread until the block
    ends; `receiver.url`, `receiver.count`."""

    def __init__(self) -> None:
        self._receiver = Receiver()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    @property
    def url(self) -> str:
        return self._receiver.url

    @property
    def count(self) -> int:
        return self._receiver.count

    def __enter__(self) -> ThreadedReceiver:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._receiver.start(), self._loop).result(10)
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _traceback: TracebackType | None,
    ) -> None:
        asyncio.run_coroutine_threadsafe(self._receiver.stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
