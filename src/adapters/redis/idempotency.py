"""Redis IdempotencyStore: one key per idempotency key, `{key_prefix}idem:{key}`.

The value is either an in-flight marker, `b"P" + fingerprint`, set by `begin` with SET NX and a
TTL, or a finished record, `b"D" + msgpack([fingerprint, status, body, headers])`, written by
`complete`. `begin` and `release` are Lua scripts so that "claim or read" and "delete only if
still in flight" each take one atomic round trip.
"""

from __future__ import annotations

import msgspec
from redis.asyncio import Redis

from domain.ports import IdempotencyRecord, StoredResponse

_IN_FLIGHT = b"P"
_DONE = b"D"

_BEGIN = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then
  return false
end
return redis.call('GET', KEYS[1])
"""

_RELEASE = """
local value = redis.call('GET', KEYS[1])
if value and string.sub(value, 1, 1) == 'P' then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class _Done(msgspec.Struct, array_like=True, frozen=True):
    fingerprint: str
    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...]


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(_Done)


def _decode(value: bytes) -> IdempotencyRecord:
    kind, payload = value[:1], value[1:]
    if kind == _IN_FLIGHT:
        return IdempotencyRecord(fingerprint=payload.decode(), response=None)
    if kind == _DONE:
        done = _decoder.decode(payload)
        response = StoredResponse(status=done.status, body=done.body, headers=done.headers)
        return IdempotencyRecord(fingerprint=done.fingerprint, response=response)
    raise ValueError(f"unrecognised idempotency record (starts with {kind!r})")


class RedisIdempotencyStore:
    def __init__(self, client: Redis, key_prefix: str = "taskhub:") -> None:
        self._client = client
        self._key_prefix = key_prefix
        self._begin = client.register_script(_BEGIN)
        self._release = client.register_script(_RELEASE)

    def key_for(self, key: str) -> str:
        return f"{self._key_prefix}idem:{key}"

    async def begin(self, key: str, fingerprint: str, ttl_seconds: int) -> IdempotencyRecord | None:
        existing = await self._begin(
            keys=[self.key_for(key)], args=[_IN_FLIGHT + fingerprint.encode(), _ttl(ttl_seconds)]
        )
        return None if existing is None else _decode(existing)

    async def complete(
        self, key: str, fingerprint: str, response: StoredResponse, ttl_seconds: int
    ) -> None:
        done = _Done(fingerprint, response.status, response.body, response.headers)
        value = _DONE + _encoder.encode(done)
        await self._client.set(self.key_for(key), value, ex=_ttl(ttl_seconds))

    async def release(self, key: str) -> None:
        await self._release(keys=[self.key_for(key)])


def _ttl(seconds: int) -> int:
    if seconds < 1:
        raise ValueError("an idempotency TTL must be at least 1 s")
    return seconds
