"""The idempotency-key protocol, whatever the transport (HTTP `Idempotency-Key`, an MCP tool's
`idempotency_key`): claim the caller's key, replay the first answer, or run once and keep it.

- the same key with the same request returns the first answer for `REPLAY_TTL_SECONDS`;
- with another request it is `Invalid` on the key's field; while the first is still running it
  is `Conflict` (a claim lasts `IN_FLIGHT_TTL_SECONDS` at most);
- an action that fails releases the claim, so a retry runs again;
- a store that cannot answer the claim is `Unavailable` (rather than risk a duplicate).
Keys are scoped per user, across every idempotent operation.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from domain.errors import Conflict, FieldError, Invalid, Unavailable
from domain.ports import IdempotencyStore, StoredResponse

REPLAY_TTL_SECONDS = 24 * 3600
# An in-flight claim outlives no crashed request by much: retries get 409 for this long at most.
IN_FLIGHT_TTL_SECONDS = 60

# (what failed, the exception's type name): the caller logs it; the protocol goes on.
StoreTrouble = Callable[[str, str], None]


@dataclass(frozen=True, slots=True)
class Replayed:
    """The first answer to the same key and request, as it was kept."""

    response: StoredResponse


class RunOnce:
    def __init__(self, store: IdempotencyStore, trouble: StoreTrouble) -> None:
        self._store, self._trouble = store, trouble

    async def execute[T](
        self,
        user_id: str,
        key: str,
        fingerprint: str,
        action: Callable[[], Awaitable[T]],
        keep: Callable[[T], StoredResponse],
        key_field: str,
    ) -> T | Replayed:
        """`action`'s result (run once for this user's `key`), kept as `keep` says; or the
        answer kept by the first run. `key_field` names the key in errors."""
        store_key = f"{user_id}:{key}"
        try:
            record = await self._store.begin(store_key, fingerprint, IN_FLIGHT_TTL_SECONDS)
        except Exception as exc:
            self._trouble("idempotency store unavailable", type(exc).__name__)
            raise Unavailable("Idempotency store unavailable; retry later.") from None
        if record is not None:
            if record.fingerprint != fingerprint:
                raise Invalid(
                    f"{key_field} was already used with a different request body.",
                    [FieldError(key_field, "was used with a different body")],
                )
            if record.response is None:
                raise Conflict(f"A request with this {key_field} is still in progress.")
            return Replayed(record.response)
        try:
            result = await action()
        except BaseException:
            try:
                await self._store.release(store_key)
            except Exception as exc:
                self._trouble("idempotency release failed", type(exc).__name__)
            raise
        try:
            await self._store.complete(store_key, fingerprint, keep(result), REPLAY_TTL_SECONDS)
        except Exception as exc:
            self._trouble("idempotency store unavailable after create", type(exc).__name__)
        return result
