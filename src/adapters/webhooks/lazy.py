"""The webhook sender, built on its first delivery, so that a process loads httpx (and what it
brings) only once it delivers a webhook: most serving workers never do, and the client costs
every process several MiB. This module imports no httpx code."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import TYPE_CHECKING

from domain.webhooks import SendResult, TargetPolicy

if TYPE_CHECKING:
    from adapters.webhooks.sender import HttpxWebhookSender


def _build(policy: TargetPolicy, timeout: float) -> HttpxWebhookSender:
    from adapters.webhooks.sender import HttpxWebhookSender

    return HttpxWebhookSender(policy, timeout=timeout)


class LazyWebhookSender:
    """The `WebhookSender` port: an `HttpxWebhookSender(policy, timeout=timeout)` built on the
    first `send`, in a thread (importing httpx and loading the TLS context take a while), so the
    event loop keeps serving meanwhile; concurrent first sends share one build."""

    def __init__(self, policy: TargetPolicy, *, timeout: float) -> None:
        self._policy, self._timeout = policy, timeout
        self._sender: HttpxWebhookSender | None = None
        self._building: asyncio.Lock | None = None

    @property
    def built(self) -> bool:
        return self._sender is not None

    async def _built(self) -> HttpxWebhookSender:
        if self._sender is None:
            self._building = self._building or asyncio.Lock()
            async with self._building:
                if self._sender is None:
                    self._sender = await asyncio.to_thread(_build, self._policy, self._timeout)
        return self._sender

    async def send(self, url: str, headers: Mapping[str, str], body: bytes) -> SendResult:
        sender = await self._built()
        return await sender.send(url, headers, body)

    async def aclose(self) -> None:
        """Closes the client, if one was built (a later `send` builds another)."""
        sender, self._sender = self._sender, None
        if sender is not None:
            await sender.aclose()
