"""The in-memory idempotency store: claim, in flight, complete, replay, expiry, release."""

from __future__ import annotations

import asyncio

from adapters.memory.idempotency import MemoryIdempotencyStore
from domain.ports import IdempotencyRecord, StoredResponse

RESPONSE = StoredResponse(201, b'{"id": "1"}', (("location", "/v1/tasks/1"),))


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_first_begin_claims_then_sees_in_flight() -> None:
    store = MemoryIdempotencyStore()
    assert await store.begin("k", "fp", 60) is None
    assert await store.begin("k", "fp", 60) == IdempotencyRecord("fp", None)
    # the record keeps the first fingerprint, so a different body can be told apart
    assert await store.begin("k", "other", 60) == IdempotencyRecord("fp", None)


async def test_complete_is_replayed() -> None:
    store = MemoryIdempotencyStore()
    await store.begin("k", "fp", 60)
    await store.complete("k", "fp", RESPONSE, 60)
    assert await store.begin("k", "fp", 60) == IdempotencyRecord("fp", RESPONSE)


async def test_keys_are_independent() -> None:
    store = MemoryIdempotencyStore()
    await store.begin("k1", "fp", 60)
    assert await store.begin("k2", "fp", 60) is None


async def test_records_expire_after_ttl() -> None:
    clock = FakeMonotonic()
    store = MemoryIdempotencyStore(clock)
    await store.begin("k", "fp", 10)
    clock.now += 9
    assert await store.begin("k", "fp", 10) is not None
    clock.now += 1
    assert await store.begin("k", "fp", 10) is None  # the in-flight claim expired
    await store.complete("k", "fp", RESPONSE, 30)
    clock.now += 29
    assert await store.begin("k", "fp", 10) == IdempotencyRecord("fp", RESPONSE)
    clock.now += 1
    assert await store.begin("k", "fp2", 10) is None


async def test_expired_records_are_swept() -> None:
    clock = FakeMonotonic()
    store = MemoryIdempotencyStore(clock)
    for n in range(100):
        await store.begin(f"k{n}", "fp", 5)
    clock.now += 120
    await store.begin("fresh", "fp", 5)
    assert len(store) == 1


async def test_release_frees_an_in_flight_claim() -> None:
    store = MemoryIdempotencyStore()
    await store.begin("k", "fp", 60)
    await store.release("k")
    assert await store.begin("k", "fp", 60) is None


async def test_release_keeps_a_completed_record() -> None:
    store = MemoryIdempotencyStore()
    await store.begin("k", "fp", 60)
    await store.complete("k", "fp", RESPONSE, 60)
    await store.release("k")
    assert await store.begin("k", "fp", 60) == IdempotencyRecord("fp", RESPONSE)


async def test_release_of_unknown_key_is_harmless() -> None:
    await MemoryIdempotencyStore().release("nothing")


async def test_concurrent_begins_claim_once() -> None:
    store = MemoryIdempotencyStore()
    results = await asyncio.gather(*(store.begin("k", "fp", 60) for _ in range(50)))
    assert results.count(None) == 1
