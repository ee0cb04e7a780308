"""Principal cache in Redis, shared by every worker and replica.

`{prefix}pc:{token hash}` holds the principal (msgpack) with a TTL; `{prefix}pcid:{credential}`
is the set of entries made from one session or key, so logout and revocation evict them for
every process at once. Keys hold only keyed hashes, never a token.
"""

from __future__ import annotations

import msgspec
import redis.asyncio as redis

from domain.auth import Principal, PrincipalKind, Scope

_PUT = """
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
redis.call('SADD', KEYS[2], KEYS[1])
if redis.call('TTL', KEYS[2]) < tonumber(ARGV[2]) then
  redis.call('EXPIRE', KEYS[2], ARGV[2])
end
return 1
"""

_EVICT = """
local members = redis.call('SMEMBERS', KEYS[1])
for _, key in ipairs(members) do redis.call('DEL', key) end
redis.call('DEL', KEYS[1])
return #members
"""

_Wire = tuple[str, str, list[str], str, str]
_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(_Wire)


def encode_principal(principal: Principal) -> bytes:
    return _encoder.encode(
        (
            principal.user_id,
            principal.kind.value,
            sorted(s.value for s in principal.scopes),
            principal.credential_id,
            principal.actor,
        )
    )


# Decoded entries by their bytes: under load the same few principals come back on every request,
# and a Principal is immutable, so one decoded value can serve them all.
_DECODED_MAX = 1024
_decoded: dict[bytes, Principal] = {}


def decode_principal(raw: bytes) -> Principal:
    principal = _decoded.get(raw)
    if principal is not None:
        return principal
    user_id, kind, scopes, credential_id, actor = _decoder.decode(raw)
    principal = Principal(
        user_id=user_id,
        kind=PrincipalKind(kind),
        scopes=frozenset(Scope(s) for s in scopes),
        credential_id=credential_id,
        actor=actor,
    )
    if len(_decoded) >= _DECODED_MAX:
        _decoded.clear()
    _decoded[raw] = principal
    return principal


class RedisPrincipalCache:
    def __init__(self, client: redis.Redis, key_prefix: str = "taskhub:") -> None:
        self._client = client
        self._prefix = key_prefix
        self._put = client.register_script(_PUT)
        self._evict = client.register_script(_EVICT)

    def entry_key(self, key: str) -> str:
        return f"{self._prefix}pc:{key}"

    def credential_key(self, credential_id: str) -> str:
        return f"{self._prefix}pcid:{credential_id}"

    async def get(self, key: str) -> Principal | None:
        raw: bytes | None = await self._client.get(self.entry_key(key))  # type: ignore[assignment]
        return decode_principal(raw) if raw is not None else None

    async def put(self, key: str, principal: Principal, ttl_seconds: int) -> None:
        await self._put(
            keys=[self.entry_key(key), self.credential_key(principal.credential_id)],
            args=[encode_principal(principal), ttl_seconds],
        )

    async def evict(self, credential_id: str) -> None:
        await self._evict(keys=[self.credential_key(credential_id)])
