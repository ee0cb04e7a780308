"""An answer's head waits for its body written in the same turn of the loop (one write), and
goes out alone at the end of the turn when no body follows (a stream)."""

from __future__ import annotations

import asyncio
from typing import Any

from adapters.http.connections import _HeadWithBody


class _Transport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str) -> Any:
        return f"info:{name}"


HEAD = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n"


async def test_a_head_and_its_body_in_one_turn_are_one_write() -> None:
    transport = _Transport()
    answer = _HeadWithBody(transport, asyncio.get_running_loop())  # type: ignore[arg-type]
    answer.write(HEAD)
    assert transport.writes == []
    answer.write(b"{}")
    assert transport.writes == [HEAD + b"{}"]
    await asyncio.sleep(0)  # the end of the turn adds nothing
    assert transport.writes == [HEAD + b"{}"]


async def test_a_head_without_a_body_goes_out_at_the_end_of_the_turn() -> None:
    transport = _Transport()
    answer = _HeadWithBody(transport, asyncio.get_running_loop())  # type: ignore[arg-type]
    answer.write(HEAD)
    await asyncio.sleep(0)
    assert transport.writes == [HEAD]
    answer.write(b"data: 1\n\n")  # later writes of a stream go straight through
    assert transport.writes == [HEAD, b"data: 1\n\n"]


async def test_100_continue_is_not_held_and_close_sends_a_held_head_first() -> None:
    transport = _Transport()
    answer = _HeadWithBody(transport, asyncio.get_running_loop())  # type: ignore[arg-type]
    answer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    assert transport.writes == [b"HTTP/1.1 100 Continue\r\n\r\n"]
    answer.write(HEAD)
    answer.close()
    assert transport.writes[1:] == [HEAD]
    assert transport.closed
    assert answer.get_extra_info("peername") == "info:peername"
