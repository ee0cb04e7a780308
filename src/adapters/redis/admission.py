"""Admission on Redis: the cached principal and the request's rate-limit decision in one round
trip, with its own fallback when that round trip fails.

The gate script reads the principal cache entry (`RedisPrincipalCache`), which names the bucket
its requests count in, and runs the same GCRA as `RedisRateLimiter` on that bucket. The script
knows neither how a principal is encoded nor how a bucket key is made: both are written by
Python when the entry is cached. On a miss it counts nothing and returns nothing.

The bucket key is read inside the script, so this needs a standalone Redis (or a cluster where
both keys share a hash slot): Taskhub's supported deployments.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog
from redis.asyncio import Redis
from redis.exceptions import NoScriptError

from adapters.redis.principals import RedisPrincipalCache, decode_principal
from adapters.redis.rate_limit import GCRA_LUA, outcome_from_reply
from domain.auth import Principal, address_subject
from domain.ports import RateLimitDecision, RateLimiter
from domain.rate_limits import gcra_parameters

log = structlog.get_logger("taskhub.admission")

GATE_SCRIPT = (
    GCRA_LUA
    + """
local entry = redis.call('HMGET', KEYS[1], 'principal', 'bucket')
if not entry[1] then return {} end
local reply = gcra(entry[2], tonumber(ARGV[1]), tonumber(ARGV[2]), 1)
reply[6] = entry[1]
return reply
"""
)


class RedisAdmission:
    """The Admission port on Redis. A hit costs one gate call. A miss, or a gate that fails
    (Redis down or slow), takes the fallback: `authenticate` (the database, caching the
    principal for the next request) and then `limiter` (which fails open when Redis is down).
    `counted(allowed)` records each decision the gate took (the limiter records its own)."""

    def __init__(
        self,
        gate: RedisRequestGate,
        *,
        cache_key: Callable[[str, str | None], str],
        authenticate: Callable[[str, str | None], Awaitable[Principal]],
        limiter: RateLimiter,
        counted: Callable[[bool], None],
    ) -> None:
        self.policy = gate.policy
        self._gate = gate
        self._cache_key = cache_key
        self._authenticate = authenticate
        self._limiter = limiter
        self._counted = counted

    async def admit(
        self, token: str, acting_user: str | None
    ) -> tuple[Principal, RateLimitDecision]:
        key = self._cache_key(token, acting_user)  # Unauthenticated propagates
        try:
            admitted = await self._gate.admit(key)
        except Exception as exc:
            log.warning("request gate unavailable; taking the slow path", error=type(exc).__name__)
            admitted = None
        if admitted is not None:
            self._counted(admitted[1].allowed)
            return admitted
        principal = await self._authenticate(token, acting_user)
        return principal, await self._limiter.hit(self.policy, principal.rate_limit_subject)

    async def admit_anonymous(self, address: str) -> RateLimitDecision:
        return await self._limiter.hit(self.policy, address_subject(address))

    async def charge(self, principal: Principal, cost: int) -> RateLimitDecision:
        """Through the limiter, on the bucket the gate counts in (the cache entry names the
        limiter's own key for the principal's subject)."""
        return await self._limiter.hit(self.policy, principal.rate_limit_subject, cost)


class RedisRequestGate:
    """Runs the gate script for the entries of `cache`, under `cache.policy`, batching the calls
    of one event-loop turn.

    Under load a worker has many requests reaching the gate at about the same time; each one
    sent on its own costs a client call, a write and a read, on both sides. Calls are queued and
    the queue is sent two event-loop turns after its first call, as one pipeline (no
    transaction: each script runs atomically on its own, as it would alone), so N requests cost
    one round trip. Waiting one turn more than needed about doubles the batch under load for a
    delay of two loop turns. `max_batch` bounds a pipeline; a longer queue is sent as several.
    """

    def __init__(self, client: Redis, cache: RedisPrincipalCache, *, max_batch: int = 128) -> None:
        self.policy = cache.policy
        params = gcra_parameters(cache.policy)
        self._interval = params.interval_us
        self._capacity = params.capacity_us
        self._client = client
        self._cache = cache
        self._script = client.register_script(GATE_SCRIPT)
        self._max_batch = max_batch
        self._queue: list[_Call] = []
        self._flushes: set[asyncio.Task[None]] = set()

    async def admit(self, cache_key: str) -> tuple[Principal, RateLimitDecision] | None:
        """The cached principal and this request's rate-limit decision, or None on a miss.
        Raises redis errors when Redis cannot answer."""
        loop = asyncio.get_running_loop()
        call = _Call(self._cache.entry_key(cache_key), loop.create_future())
        if not self._queue:
            loop.call_soon(loop.call_soon, self._flush)  # two turns: see the class text
        self._queue.append(call)
        reply = await call.reply
        if not reply:
            return None
        principal = decode_principal(reply[5])
        return principal, outcome_from_reply(reply).decision(self.policy.limit)

    def _flush(self) -> None:
        queue, self._queue = self._queue, []
        for start in range(0, len(queue), self._max_batch):
            task = asyncio.get_running_loop().create_task(
                self._send(queue[start : start + self._max_batch])
            )
            self._flushes.add(task)  # keep a reference until it is done
            task.add_done_callback(self._flushes.discard)

    async def _send(self, batch: list[_Call]) -> None:
        try:
            replies = await self._run(batch)
        except asyncio.CancelledError:
            for call in batch:
                call.reply.cancel()
            raise
        except Exception as exc:
            for call in batch:
                if not call.reply.done():
                    call.reply.set_exception(exc)
            return
        for call, reply in zip(batch, replies, strict=True):
            if call.reply.done():  # the request went away meanwhile
                continue
            if isinstance(reply, Exception):
                call.reply.set_exception(reply)
            else:
                call.reply.set_result(reply)

    async def _run(self, batch: list[_Call]) -> list[Any]:
        replies = await self._pipeline(batch)
        if any(isinstance(reply, NoScriptError) for reply in replies):
            # Redis restarted or its scripts were flushed: load the script once, then resend.
            await self._client.script_load(GATE_SCRIPT)
            replies = await self._pipeline(batch)
        return replies

    async def _pipeline(self, batch: list[_Call]) -> list[Any]:
        pipe = self._client.pipeline(transaction=False)
        sha = self._script.sha
        interval, capacity = self._interval, self._capacity
        for call in batch:
            pipe.execute_command("EVALSHA", sha, 1, call.entry_key, interval, capacity)
        replies: list[Any] = await pipe.execute(raise_on_error=False)
        return replies


@dataclass(frozen=True, slots=True)
class _Call:
    entry_key: str
    reply: asyncio.Future[Any]
