"""The request gate: look up a cached principal AND count the request, in one Redis round trip.

The hot path of every authenticated request needs both; done apart they are two round trips.
The script reads the principal cache entry (`RedisPrincipalCache`'s format), derives the
rate-limit subject from it exactly like `domain.auth.Principal.rate_limit_subject`, and runs
the same GCRA as `RedisRateLimiter` on `{prefix}rl:{policy}:{subject}`. On a cache miss it does
nothing and the caller takes the slow path (database, then the limiter).

The rate-limit key is built inside the script, so this needs a standalone Redis (or a cluster
where both keys share a hash slot): Taskhub's supported deployments.
"""

from __future__ import annotations

from redis.asyncio import Redis

from adapters.redis.principals import RedisPrincipalCache, decode_principal
from adapters.redis.rate_limit import GCRA_LUA, outcome_from_reply
from domain.auth import Principal
from domain.ports import RateLimitDecision, RateLimitPolicy
from domain.rate_limits import gcra_parameters

GATE_SCRIPT = (
    GCRA_LUA
    + """
local entry = redis.call('GET', KEYS[1])
if not entry then return {} end
local p = cmsgpack.unpack(entry)
local subject
if p[2] == 'api_key' then subject = 'key:' .. p[4]
elseif p[2] == 'service' then subject = 'service:' .. p[1]
else subject = 'user:' .. p[1] end
local reply = gcra(ARGV[3] .. subject, tonumber(ARGV[1]), tonumber(ARGV[2]))
reply[6] = entry
return reply
"""
)


class RedisRequestGate:
    def __init__(self, client: Redis, key_prefix: str = "taskhub:") -> None:
        self._cache = RedisPrincipalCache(client, key_prefix)
        self._prefix = key_prefix
        self._script = client.register_script(GATE_SCRIPT)

    async def admit(
        self, cache_key: str, policy: RateLimitPolicy
    ) -> tuple[Principal, RateLimitDecision] | None:
        """The cached principal and this request's rate-limit decision, or None on a miss.
        Raises redis errors when Redis cannot answer (the caller falls back)."""
        params = gcra_parameters(policy)
        reply = await self._script(
            keys=[self._cache.entry_key(cache_key)],
            args=[params.interval_us, params.capacity_us, f"{self._prefix}rl:{policy.name}:"],
        )
        if not reply:
            return None
        principal = decode_principal(reply[5])
        return principal, outcome_from_reply(reply).decision(policy.limit)
