"""Per-test Redis clients and a per-test key prefix under the run's prefix (deleted afterwards)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from redis.asyncio import Redis

from adapters.redis.client import create_redis_client
from tests.integration.backends import RedisTarget

ClientFactory = Callable[..., Awaitable[Redis]]


@pytest.fixture
def key_prefix(redis_target: RedisTarget) -> str:
    return f"{redis_target.key_prefix}{uuid.uuid4().hex[:8]}:"


@pytest.fixture
async def make_client(redis_target: RedisTarget, key_prefix: str) -> AsyncIterator[ClientFactory]:
    """`await make_client(**create_redis_client options)`: a client with its own pool, closed
    after the test; the test's keys are deleted at the end."""
    clients: list[Redis] = []

    async def make(**options: Any) -> Redis:
        client = create_redis_client(redis_target.url, **options)
        clients.append(client)
        return client

    yield make
    if clients:
        keys = [key async for key in clients[0].scan_iter(match=f"{key_prefix}*")]
        if keys:
            await clients[0].delete(*keys)
    for client in clients:
        await client.aclose()


@pytest.fixture
async def client(make_client: ClientFactory) -> Redis:
    return await make_client()
