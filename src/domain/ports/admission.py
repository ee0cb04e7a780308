"""The admission port: who is calling, and may they now, decided in one step per request."""

from __future__ import annotations

from typing import Protocol

from domain.auth import Principal
from domain.ports import RateLimitDecision, RateLimitPolicy


class Admission(Protocol):
    """Authenticates a bearer token and counts the request against the caller's budget under
    `policy` (`Principal.rate_limit_subject`). Calls without a valid credential are counted per
    client address (`address_subject`). An adapter whose store is down falls back on its own:
    callers see only `Unauthenticated` for a bad credential."""

    policy: RateLimitPolicy

    async def admit(
        self, token: str, acting_user: str | None
    ) -> tuple[Principal, RateLimitDecision]:
        """The caller and this request's decision; `Unauthenticated` (nothing counted) when the
        token resolves to no principal."""
        ...

    async def admit_anonymous(self, address: str) -> RateLimitDecision:
        """Count a request that carries no valid credential, per client address."""
        ...

    async def charge(self, principal: Principal, cost: int) -> RateLimitDecision:
        """Count `cost` more requests (all or none) in the budget of an admitted `principal`,
        for a request that turns out to weigh more than one (a batch); the decision after it."""
        ...
