"""uvicorn's httptools HTTP/1.1 protocol with the limits a server facing the internet needs.

uvicorn bounds neither the size of a request head nor the time a client takes to send it or its
body, and a connection that never sends a byte stays open. This protocol adds, per connection:

- a cap on the request head (request line and headers): beyond it, 431 and the connection closes;
- a deadline for the head, counted from the connection's start (or, on a kept-alive connection,
  from the first byte of the next request): past it, 408 and close (a connection that sent
  nothing is closed quietly);
- a deadline for the body, counted from the end of the head: past it, 408 (if no answer has
  started) and close, and the application's `receive()` reports the client gone;
- a cap on open connections per process: a connection beyond it is answered 503 at once and
  closed, before it can hold any memory.

uvicorn's own error answers (its 400 for bytes that are not HTTP) are problem+json here too.

uvicorn writes an answer's status line and headers, then its body, as two writes (two system
calls, two packets). Here the head waits for the body written in the same turn of the event
loop, so an ordinary answer is one write; a head with no body yet (a stream) goes out at the end
of that turn.
The idle time between two requests on a kept-alive connection stays uvicorn's `timeout_keep_alive`.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import httptools
import msgspec
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    max_header_bytes: int
    header_timeout: float
    body_timeout: float
    max_connections: int


# The problem types the application uses for the same statuses.
_SLUGS = {503: "unavailable"}


class _HeadTooLarge(Exception):
    """Raised inside the parser's callback to stop parsing a head over the cap."""


def problem_answer(
    status: int, detail: str, default_headers: Iterable[tuple[bytes, bytes]] = ()
) -> bytes:
    """A whole HTTP/1.1 answer with a problem+json body that closes the connection."""
    # Imported here, not at the top: `taskhub serve`'s supervising process loads this module to
    # hand it to its workers and should not pay for importing Litestar.
    from adapters.http.problems import PROBLEM_JSON, TYPE_BASE, Problem

    # (Not the middleware's generator: importing it would set up the metrics in `taskhub serve`'s
    # supervising process.)
    request_id = uuid.uuid4().hex
    phrase = HTTPStatus(status).phrase
    body = msgspec.json.encode(
        Problem(
            type=TYPE_BASE + _SLUGS.get(status, phrase.lower().replace(" ", "-")),
            title=phrase,
            status=status,
            detail=detail,
            request_id=request_id,
        )
    )
    head = [f"HTTP/1.1 {status} {phrase}\r\n".encode()]
    head.extend(name + b": " + value + b"\r\n" for name, value in default_headers)
    head.append(
        (
            f"content-type: {PROBLEM_JSON}\r\n"
            f"content-length: {len(body)}\r\n"
            "x-content-type-options: nosniff\r\n"
            f"x-request-id: {request_id}\r\n"
            + ("retry-after: 1\r\n" if status == 503 else "")
            + "connection: close\r\n\r\n"
        ).encode()
    )
    return b"".join(head) + body


_CONTINUE = b"HTTP/1.1 100 "


class _HeadWithBody:
    """One answer's transport (uvicorn's `RequestResponseCycle` writes through it): the first
    write, the head, is held until the next write (the body), which takes it along, or until the
    end of the loop's turn. Everything else is the connection's transport."""

    __slots__ = ("_held", "_loop", "_started", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None
        self._started = False

    def write(self, data: bytes) -> None:
        if self._held is not None:
            data, self._held = self._held + data, None
        elif not self._started and not data.startswith(_CONTINUE):
            self._started = True
            self._held = data
            self._loop.call_soon(self._flush)
            return
        self._transport.write(data)

    def _flush(self) -> None:
        held, self._held = self._held, None
        if held is not None and not self._transport.is_closing():
            self._transport.write(held)

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """HttpToolsProtocol with the limits above (see the module text).

    uvicorn builds one per connection; `taskhub serve` passes it, with its limits bound, as the
    `http` protocol."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        limits: ConnectionLimits,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.limits = limits
        self._heads_begun = 0
        self._head_started = False  # a request's first byte came, its head is not complete
        self._in_body = False  # a request's head is complete, its body is not
        self._raw_head_bytes = 0
        self._parsed_head_bytes = 0
        self._head_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._done = False  # answered by this class and closing: ignore further bytes

    # Connection

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            self.logger.warning("Connection refused: over the connection cap.")
            self._answer_and_close(503, "The server has too many connections; retry later.")
            return
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timers()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._done:
            return
        self._unset_keepalive_if_required()
        heads_before, within_head = self._heads_begun, self._head_started
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        except httptools.HttpParserError as exc:
            if isinstance(exc.__context__, _HeadTooLarge):
                self._head_too_large()
            else:
                self.logger.warning("Invalid HTTP request received.")
                self._answer_and_close(400, "The request is not valid HTTP/1.1.")
            return
        if self._done:
            return
        if self._head_started:
            # A head still incomplete. A chunk that lay wholly inside it counts in full (a
            # single header value grows inside the parser until it ends); parts of a head in
            # the chunk that began or ended it are judged from the parsed lines.
            if within_head and self._heads_begun == heads_before:
                self._raw_head_bytes += len(data)
                if self._raw_head_bytes > self.limits.max_header_bytes:
                    self._head_too_large()
                    return
            if self._head_timer is None and self._between_answers():
                self._arm_head_timer()
        elif self._in_body and self._body_timer is None and self.limits.body_timeout:
            self._body_timer = self.loop.call_later(self.limits.body_timeout, self._body_too_slow)

    # Parser callbacks

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._heads_begun += 1
        self._head_started = True
        self._raw_head_bytes = 0
        self._parsed_head_bytes = 0

    def on_header(self, name: bytes, value: bytes) -> None:
        super().on_header(name, value)
        self._parsed_head_bytes += len(name) + len(value) + 4
        if self._parsed_head_bytes + len(self.url) > self.limits.max_header_bytes:
            raise _HeadTooLarge

    def on_headers_complete(self) -> None:
        if self._parsed_head_bytes + len(self.url) > self.limits.max_header_bytes:
            raise _HeadTooLarge
        self._head_started = False
        self._in_body = True
        self._cancel_head_timer()
        super().on_headers_complete()
        # Before the answer's task first runs (it was only scheduled): its writes go through.
        self.cycle.transport = _HeadWithBody(self.transport, self.loop)  # type: ignore[assignment]

    def on_message_complete(self) -> None:
        self._in_body = False
        self._cancel_body_timer()
        super().on_message_complete()

    # Time limits and answers

    def _between_answers(self) -> bool:
        return self.cycle is None or self.cycle.response_complete

    def _arm_head_timer(self) -> None:
        self._cancel_head_timer()
        self._head_timer = self.loop.call_later(self.limits.header_timeout, self._head_too_slow)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _cancel_body_timer(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    def _cancel_timers(self) -> None:
        self._cancel_head_timer()
        self._cancel_body_timer()

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if self._done or self.transport.is_closing():
            return
        if not self._between_answers():
            return  # an answer is on its way; the keep-alive timer takes over after it
        if not self._head_started:
            self._close_quietly()  # nothing was asked: no answer
            return
        self.logger.info("Request head not received in time; closing the connection.")
        self._answer_and_close(408, "The request head did not arrive in time.")

    def _body_too_slow(self) -> None:
        self._body_timer = None
        if self._done or self.transport.is_closing():
            return
        if self.flow.read_paused:
            # Not the client's delay: this side stopped reading (the application has not yet
            # taken the body buffered so far, or a pipelined request waits its turn).
            self._body_timer = self.loop.call_later(self.limits.body_timeout, self._body_too_slow)
            return
        cycle = self.cycle
        self.logger.info("Request body not received in time; closing the connection.")
        if cycle is not None and not cycle.response_started:
            self._answer_and_close(408, "The request body did not arrive in time.")
        else:
            self._close_quietly()

    def _head_too_large(self) -> None:
        self.logger.warning("Request head over the size cap; closing the connection.")
        self._answer_and_close(
            431, f"The request line and headers exceed {self.limits.max_header_bytes} bytes."
        )

    def _answer_and_close(self, status: int, detail: str) -> None:
        """Answer for the connection (no request cycle may write after this) and close it."""
        self._forget_cycle()
        self.transport.write(problem_answer(status, detail, self.server_state.default_headers))
        self.transport.close()

    def _close_quietly(self) -> None:
        self._forget_cycle()
        self.transport.close()

    def _forget_cycle(self) -> None:
        self._done = True
        self._cancel_timers()
        self._unset_keepalive_if_required()
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            # The application's receive() now reports the client gone, and its send() is a no-op.
            cycle.disconnected = True
            cycle.message_event.set()

    def send_400_response(self, msg: str) -> None:
        self._answer_and_close(400, msg)
