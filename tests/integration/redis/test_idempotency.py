"""RedisIdempotencyStore against a real Redis: claim, replay, release, expiry, races."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis

from adapters.redis.idempotency import RedisIdempotencyStore
from domain.ports import IdempotencyRecord, StoredResponse
from tests.integration.redis.conftest import ClientFactory

pytestmark = pytest.mark.integration

RESPONSE = StoredResponse(
    status=201,
    body=b'{"id": "0190"}\xff\x00',  # not UTF-8: bodies are bytes
    headers=(("content-type", "application/json"), ("location", "/v1/tasks/0190")),
)


async def test_begin_complete_replay(client: Redis, key_prefix: str) -> None:
    store = RedisIdempotencyStore(client, key_prefix)
    assert await store.begin("user-1:key-a", "fp-1", ttl_seconds=60) is None
    assert await store.begin("user-1:key-a", "fp-1", 60) == IdempotencyRecord("fp-1", None)
    assert await store.begin("user-1:key-a", "fp-2", 60) == IdempotencyRecord("fp-1", None)

    await store.complete("user-1:key-a", "fp-1", RESPONSE, ttl_seconds=3600)
    replay = await store.begin("user-1:key-a", "fp-1", 60)
    assert replay == IdempotencyRecord("fp-1", RESPONSE)
    assert 3_590_000 < await client.pttl(store.key_for("user-1:key-a")) <= 3_600_000
    assert await store.begin("user-1:key-b", "fp-1", 60) is None  # keys are independent


async def test_release_frees_an_in_flight_claim_but_never_a_finished_one(
    client: Redis, key_prefix: str
) -> None:
    store = RedisIdempotencyStore(client, key_prefix)
    assert await store.begin("k", "fp-1", 60) is None
    await store.release("k")
    assert await store.begin("k", "fp-2", 60) is None  # a retry may run again

    await store.complete("k", "fp-2", RESPONSE, 60)
    await store.release("k")
    assert await store.begin("k", "fp-2", 60) == IdempotencyRecord("fp-2", RESPONSE)
    await store.release("never-claimed")  # harmless


async def test_an_in_flight_claim_expires_with_its_ttl(client: Redis, key_prefix: str) -> None:
    store = RedisIdempotencyStore(client, key_prefix)
    assert await store.begin("k", "fp-1", ttl_seconds=1) is None
    assert 0 < await client.pttl(store.key_for("k")) <= 1000
    await asyncio.sleep(1.2)
    assert await store.begin("k", "fp-1", 60) is None


async def test_concurrent_begins_have_exactly_one_winner(
    make_client: ClientFactory, key_prefix: str
) -> None:
    stores = [RedisIdempotencyStore(await make_client(), key_prefix) for _ in range(3)]
    two = await asyncio.gather(
        stores[0].begin("pair", "fp-a", 60), stores[1].begin("pair", "fp-b", 60)
    )
    assert sum(result is None for result in two) == 1

    many = await asyncio.gather(*(stores[i % 3].begin("crowd", f"fp-{i}", 60) for i in range(200)))
    winners = [i for i, result in enumerate(many) if result is None]
    assert len(winners) == 1
    expected = IdempotencyRecord(f"fp-{winners[0]}", None)
    assert all(result == expected for result in many if result is not None)


async def test_ttl_must_be_positive(client: Redis, key_prefix: str) -> None:
    store = RedisIdempotencyStore(client, key_prefix)
    with pytest.raises(ValueError, match="TTL"):
        await store.begin("k", "fp", 0)
