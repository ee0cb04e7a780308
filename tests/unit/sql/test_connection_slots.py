"""ConnectionSlots: first come, first served, and a bounded wait."""

from __future__ import annotations

import asyncio

import pytest

from adapters.sql.uow import ConnectionSlots
from domain.errors import Unavailable


async def test_waiters_are_served_in_arrival_order() -> None:
    slots = ConnectionSlots(1, timeout_seconds=5)
    await slots.acquire()
    served: list[int] = []

    async def waiter(n: int) -> None:
        await slots.acquire()
        served.append(n)
        await asyncio.sleep(0)
        slots.release()

    tasks = [asyncio.create_task(waiter(n)) for n in range(5)]
    await asyncio.sleep(0.01)
    slots.release()
    # A newcomer arriving while others wait queues behind them instead of overtaking.
    late = asyncio.create_task(waiter(99))
    await asyncio.gather(*tasks, late)
    assert served == [0, 1, 2, 3, 4, 99]


async def test_a_wait_beyond_the_timeout_is_unavailable() -> None:
    slots = ConnectionSlots(1, timeout_seconds=0.05)
    await slots.acquire()
    with pytest.raises(Unavailable):
        await slots.acquire()
    slots.release()
    await slots.acquire()  # the slot is usable again
