"""ConcurrencyLimiter on Redis: slots shared by every worker and replica.

`{prefix}cc:{name}:{subject}` is a sorted set of tickets scored by when their lease ends, by the
Redis server's clock. Acquiring drops ended leases, then adds a ticket when fewer than `limit`
remain, atomically in one script; releasing removes the ticket. A worker that dies mid-operation
holds its slot until the lease ends (`lease_seconds`, longer than any statement may run).
When Redis cannot answer, the operation runs anyway (fails open, with a warning), like the rate
limiter.
"""

from __future__ import annotations

import secrets

import structlog
from redis.asyncio import Redis

log = structlog.get_logger("taskhub.concurrency")

_ACQUIRE = """
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""

FAILED_OPEN = ""


class RedisConcurrencyLimiter:
    def __init__(
        self,
        client: Redis,
        key_prefix: str,
        name: str,
        limit: int,
        *,
        lease_seconds: float = 60.0,
    ) -> None:
        self.limit = limit
        self._client = client
        self._prefix = f"{key_prefix}cc:{name}:"
        self._lease_ms = int(lease_seconds * 1000)
        self._acquire = client.register_script(_ACQUIRE)

    def key_for(self, subject: str) -> str:
        return self._prefix + subject

    async def acquire(self, subject: str) -> str | None:
        ticket = secrets.token_hex(8)
        try:
            taken = await self._acquire(
                keys=[self.key_for(subject)], args=[self.limit, self._lease_ms, ticket]
            )
        except Exception as exc:
            log.warning("concurrency limiter unavailable; failing open", error=type(exc).__name__)
            return FAILED_OPEN
        return ticket if taken == 1 else None

    async def release(self, subject: str, ticket: str) -> None:
        if ticket == FAILED_OPEN:
            return
        try:
            await self._client.zrem(self.key_for(subject), ticket)
        except Exception as exc:
            log.warning(
                "concurrency limiter unavailable; the slot frees when its lease ends",
                error=type(exc).__name__,
            )
