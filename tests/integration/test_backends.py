"""The harness really reaches PostgreSQL and Redis (a skip here means nothing else ran either)."""

from __future__ import annotations

import asyncpg  # type: ignore[import-untyped]
import redis.asyncio as redis

from tests.integration.backends import RedisTarget


async def test_postgres_answers(postgres_url: str) -> None:
    dsn = postgres_url.replace("postgresql+asyncpg://", "postgresql://", 1)
    conn = await asyncpg.connect(dsn)
    try:
        assert await conn.fetchval("select 40 + 2") == 42
    finally:
        await conn.close()


async def test_redis_answers(redis_target: RedisTarget) -> None:
    client = redis.Redis.from_url(redis_target.url)
    try:
        key = redis_target.key_prefix + "probe"
        await client.set(key, "v", ex=10)
        assert await client.get(key) == b"v"
        await client.delete(key)
    finally:
        await client.aclose()
