"""Redis RateLimiter: GCRA decided atomically inside Redis, one EVALSHA round trip per request.

The arithmetic is domain.rate_limits' (the in-memory adapter runs the same function in Python):
one key per (policy, subject), `{key_prefix}rl:{policy}:{subject}`, holds the theoretical arrival
time (TAT) in microseconds and expires (PX) when the bucket is full again, so idle subjects cost
nothing. "Now" is the Redis server's TIME, read inside the script, so replicas whose clocks
disagree still share one timeline. A refused request writes nothing.

Composing scripts: `GCRA_LUA` only defines `local function gcra(key, interval, capacity, cost)`
(`cost`: how many requests this one counts as), which
returns `{allowed, tat, remaining, reset_after_us, retry_after_us}`. A script that must do more in
the same round trip (admission: look up a cached principal, then count the request) is
`GCRA_LUA + "<its own body calling gcra(...)>"`, registered with `client.register_script`, whose
reply starts with those five numbers, read by `outcome_from_reply`. Bucket keys are made by
`bucket_key` only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis

from domain.ports import RateLimitDecision, RateLimitPolicy
from domain.rate_limits import GcraOutcome, gcra_parameters

GCRA_LUA = """
local function gcra(key, interval, capacity, cost)
  local time = redis.call('TIME')
  local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
  local tat = tonumber(redis.call('GET', key) or now) or now
  if tat < now then tat = now end
  local ahead = tat + interval * cost - now
  if ahead > capacity then
    return {0, tat, 0, tat - now, ahead - capacity}
  end
  local new_tat = tat + interval * cost
  redis.call('SET', key, string.format('%d', new_tat),
             'PX', string.format('%d', math.ceil(ahead / 1000)))
  return {1, new_tat, math.floor((capacity - ahead) / interval), ahead, 0}
end
"""

RATE_LIMIT_SCRIPT = (
    GCRA_LUA
    + """
return gcra(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]))
"""
)


def bucket_key(key_prefix: str, policy: RateLimitPolicy, subject: str) -> str:
    """The Redis key of `subject`'s bucket under `policy`."""
    return f"{key_prefix}rl:{policy.name}:{subject}"


def outcome_from_reply(reply: Sequence[Any]) -> GcraOutcome:
    """Read the first five integers a `gcra(...)` reply starts with."""
    allowed, tat, remaining, reset_after, retry_after = (int(value) for value in reply[:5])
    return GcraOutcome(
        allowed=allowed == 1,
        tat_us=tat,
        remaining=remaining,
        reset_after_us=reset_after,
        retry_after_us=retry_after,
    )


class RedisRateLimiter:
    def __init__(self, client: Redis, key_prefix: str = "taskhub:") -> None:
        self._client = client
        self._key_prefix = key_prefix
        self._script = client.register_script(RATE_LIMIT_SCRIPT)

    def key_for(self, policy: RateLimitPolicy, subject: str) -> str:
        return bucket_key(self._key_prefix, policy, subject)

    async def hit(self, policy: RateLimitPolicy, key: str, cost: int = 1) -> RateLimitDecision:
        """Raises redis.exceptions.ConnectionError / TimeoutError when Redis cannot answer."""
        params = gcra_parameters(policy)
        reply = await self._script(
            keys=[self.key_for(policy, key)], args=[params.interval_us, params.capacity_us, cost]
        )
        return outcome_from_reply(reply).decision(policy.limit)
