"""Principal cache in Redis, shared by every worker and replica.

`{prefix}pc2:{token hash}` is a hash with the principal (`principal`, msgpack by field name) and
the rate-limit bucket its requests count in (`bucket`, from `bucket_key`), so the admission
script reads both without knowing how either is made. (The name is new with this format: workers
of the previous release wrote plain strings under `pc:`.) `{prefix}pcid:{credential}` is the set
of entries made from one session or key, so logout and revocation evict them for every process at
once, and `{prefix}pcrev:{credential}` marks the credential revoked for `revoked_seconds`: `put`
writes nothing for it, so a request that read the credential before the revocation cannot cache
it after. Keys hold only keyed hashes, never a token.
"""

from __future__ import annotations

import msgspec
import redis.asyncio as redis

from adapters.redis.rate_limit import bucket_key
from domain.auth import Principal
from domain.ports import RateLimitPolicy

# How long a revoked credential stays refused by `put`: far longer than any request can spend
# between reading the credential and caching it (statement and pool timeouts bound that).
REVOKED_SECONDS = 3600

_PUT = """
if redis.call('EXISTS', KEYS[3]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'principal', ARGV[1], 'bucket', ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('SADD', KEYS[2], KEYS[1])
if redis.call('TTL', KEYS[2]) < tonumber(ARGV[2]) then
  redis.call('EXPIRE', KEYS[2], ARGV[2])
end
return 1
"""

_EVICT = """
redis.call('SET', KEYS[2], '1', 'EX', ARGV[1])
local members = redis.call('SMEMBERS', KEYS[1])
for _, key in ipairs(members) do redis.call('DEL', key) end
redis.call('DEL', KEYS[1])
return #members
"""

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Principal)


def encode_principal(principal: Principal) -> bytes:
    return _encoder.encode(principal)


# Decoded entries by their bytes: under load the same few principals come back on every request,
# and a Principal is immutable, so one decoded value can serve them all.
_DECODED_MAX = 1024
_decoded: dict[bytes, Principal] = {}


def decode_principal(raw: bytes) -> Principal:
    principal = _decoded.get(raw)
    if principal is not None:
        return principal
    principal = _decoder.decode(raw)
    if len(_decoded) >= _DECODED_MAX:
        _decoded.clear()
    _decoded[raw] = principal
    return principal


class RedisPrincipalCache:
    """Entries record the bucket of `policy` (the admission policy) their requests count in."""

    def __init__(
        self,
        client: redis.Redis,
        key_prefix: str,
        policy: RateLimitPolicy,
        *,
        revoked_seconds: int = REVOKED_SECONDS,
    ) -> None:
        self._client = client
        self._revoked_seconds = revoked_seconds
        self._prefix = key_prefix
        self.policy = policy
        self._put = client.register_script(_PUT)
        self._evict = client.register_script(_EVICT)

    def entry_key(self, key: str) -> str:
        return f"{self._prefix}pc2:{key}"

    def credential_key(self, credential_id: str) -> str:
        return f"{self._prefix}pcid:{credential_id}"

    def revoked_key(self, credential_id: str) -> str:
        return f"{self._prefix}pcrev:{credential_id}"

    async def get(self, key: str) -> Principal | None:
        raw: bytes | None = await self._client.hget(self.entry_key(key), "principal")  # type: ignore[assignment]
        return decode_principal(raw) if raw is not None else None

    async def put(self, key: str, principal: Principal, ttl_seconds: int) -> None:
        bucket = bucket_key(self._prefix, self.policy, principal.rate_limit_subject)
        await self._put(
            keys=[
                self.entry_key(key),
                self.credential_key(principal.credential_id),
                self.revoked_key(principal.credential_id),
            ],
            args=[encode_principal(principal), ttl_seconds, bucket],
        )

    async def evict(self, credential_id: str) -> None:
        await self._evict(
            keys=[self.credential_key(credential_id), self.revoked_key(credential_id)],
            args=[self._revoked_seconds],
        )
