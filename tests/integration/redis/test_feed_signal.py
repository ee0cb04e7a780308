"""Change-stream wake-ups over Redis pub/sub: a commit on one replica wakes the streams of
another at once; a wait without a wake-up ends at its timeout."""

from __future__ import annotations

import asyncio
import time

from adapters.memory.events import MemoryFeedSignal
from adapters.redis.feed import RedisFeedSignal
from tests.integration.backends import RedisTarget
from tests.integration.redis.conftest import ClientFactory


async def test_a_notify_on_one_replica_wakes_a_waiter_on_another(
    make_client: ClientFactory, redis_target: RedisTarget, key_prefix: str
) -> None:
    here = RedisFeedSignal(await make_client(), redis_target.url, key_prefix, MemoryFeedSignal())
    there = RedisFeedSignal(await make_client(), redis_target.url, key_prefix, MemoryFeedSignal())
    try:
        ticket = there.ticket()  # starts the subscription
        assert await there.wait(ticket, 0.2) is False  # nothing yet (and time to subscribe)
        ticket = there.ticket()
        waiting = asyncio.create_task(there.wait(ticket, 5.0))
        await asyncio.sleep(0.05)
        started = time.monotonic()
        here.notify()
        assert await waiting is True
        assert time.monotonic() - started < 0.5
        # A notify before the wait is not lost.
        ticket = here.ticket()
        here.notify()
        assert await here.wait(ticket, 0.01) is True
    finally:
        await here.close()
        await there.close()


async def test_publishes_are_coalesced_and_a_later_commit_is_never_left_unsent(
    make_client: ClientFactory, redis_target: RedisTarget, key_prefix: str
) -> None:
    here = RedisFeedSignal(await make_client(), redis_target.url, key_prefix, MemoryFeedSignal())
    there = RedisFeedSignal(await make_client(), redis_target.url, key_prefix, MemoryFeedSignal())
    try:
        ticket = there.ticket()
        assert await there.wait(ticket, 0.2) is False  # subscribed
        for _ in range(100):  # a burst of commits in one turn of the loop
            here.notify()
        ticket = there.ticket()
        assert await there.wait(ticket, 5.0) is True
        await asyncio.gather(*here._publishing)  # let the scheduled publishes finish
        assert 1 <= here.published <= 2  # not one per commit
        # A commit after those publishes gets its own, and it reaches the other replica.
        ticket = there.ticket()
        here.notify()
        assert await there.wait(ticket, 5.0) is True
    finally:
        await here.close()
        await there.close()


async def test_a_steady_stream_of_commits_publishes_at_most_once_per_spacing(
    make_client: ClientFactory, redis_target: RedisTarget, key_prefix: str
) -> None:
    spacing = 0.05
    here = RedisFeedSignal(
        await make_client(), redis_target.url, key_prefix, MemoryFeedSignal(), spacing=spacing
    )
    there = RedisFeedSignal(await make_client(), redis_target.url, key_prefix, MemoryFeedSignal())
    try:
        ticket = there.ticket()
        assert await there.wait(ticket, 0.2) is False  # subscribed
        started = time.monotonic()
        while time.monotonic() - started < 0.3:  # a commit every 2 ms, each in its own turn
            here.notify()
            await asyncio.sleep(0.002)
        elapsed = time.monotonic() - started
        ticket = there.ticket()
        here.notify()  # the last commit: its wake-up still arrives, at most a spacing late
        assert await there.wait(ticket, 5.0) is True
        await asyncio.gather(*here._publishing)
        assert 2 <= here.published <= elapsed / spacing + 3
    finally:
        await here.close()
        await there.close()
