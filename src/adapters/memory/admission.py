"""Admission in one process (the embedded default and unit tests): authenticate the token (the
use case reads its principal cache first), then count the request with the limiter."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from domain.auth import Principal, address_subject
from domain.ports import RateLimitDecision, RateLimiter, RateLimitPolicy


class MemoryAdmission:
    def __init__(
        self,
        authenticate: Callable[[str, str | None], Awaitable[Principal]],
        limiter: RateLimiter,
        policy: RateLimitPolicy,
    ) -> None:
        self.policy = policy
        self._authenticate = authenticate
        self._limiter = limiter

    async def admit(
        self, token: str, acting_user: str | None
    ) -> tuple[Principal, RateLimitDecision]:
        principal = await self._authenticate(token, acting_user)
        return principal, await self._limiter.hit(self.policy, principal.rate_limit_subject)

    async def admit_anonymous(self, address: str) -> RateLimitDecision:
        return await self._limiter.hit(self.policy, address_subject(address))

    async def charge(self, principal: Principal, cost: int) -> RateLimitDecision:
        return await self._limiter.hit(self.policy, principal.rate_limit_subject, cost)
