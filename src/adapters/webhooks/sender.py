"""Webhook POSTs with httpx under the egress rules.

- Every address a host name resolves to is checked when the connection is made (the
  `TargetPolicy`), and the connection goes to the checked address itself: a name that resolves
  to a private address, or that changes its answer between a check and the connect (DNS
  rebinding), fails the attempt with `blocked address`. TLS still verifies the host name.
- Redirects are not followed (a 3xx is a failed attempt); proxies from the environment are not
  used (they would connect on our behalf, past the check).
- The whole attempt has one time limit, and at most `max_body_bytes` of the answer are read.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

import httpcore
import httpx

from domain.webhooks import RESPONSE_BODY_KEPT, SendResult, TargetPolicy

BLOCKED = "blocked address"

Resolver = Callable[[str, int], Awaitable[list[str]]]


async def system_resolver(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (an address literal resolves to itself)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class BlockedAddress(httpcore.ConnectError):
    """The target resolved to an address the policy refuses."""


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """A network backend that resolves, checks every address, and connects to a checked one."""

    def __init__(
        self,
        policy: TargetPolicy,
        resolver: Resolver = system_resolver,
        inner: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self._policy = policy
        self._resolve = resolver
        self._inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's signature)
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            addresses = await self._resolve(host, port)
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve host: {exc.strerror or exc}") from None
        if not addresses or not all(self._policy.address_allowed(a) for a in addresses):
            raise BlockedAddress(BLOCKED)
        return await self._inner.connect_tcp(
            addresses[0], port, timeout, local_address, socket_options
        )

    async def connect_unix_socket(
        self,
        path: str,  # noqa: ARG002
        timeout: float | None = None,  # noqa: ARG002, ASYNC109
        socket_options: Iterable[Any] | None = None,  # noqa: ARG002
    ) -> httpcore.AsyncNetworkStream:
        raise BlockedAddress(BLOCKED)

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class HttpxWebhookSender:
    """The `WebhookSender` port. One client (and its connection pool) for the worker's life."""

    def __init__(
        self,
        policy: TargetPolicy,
        *,
        timeout: float,
        max_body_bytes: int = RESPONSE_BODY_KEPT,
        resolver: Resolver = system_resolver,
        monotonic: Callable[[], float] = time.monotonic,
        user_agent: str = "Taskhub-Webhooks/1",
    ) -> None:
        self._timeout = timeout
        self._max_body = max_body_bytes
        self._monotonic = monotonic
        transport = httpx.AsyncHTTPTransport(retries=0)
        # The transport's pool, rebuilt over the guarded backend (httpx has no public hook for
        # the backend); the TLS context is the transport's own.
        pool = transport._pool  # noqa: SLF001
        transport._pool = httpcore.AsyncConnectionPool(  # noqa: SLF001
            ssl_context=pool._ssl_context,  # noqa: SLF001
            max_connections=100,
            max_keepalive_connections=20,
            keepalive_expiry=5.0,
            network_backend=GuardedBackend(policy, resolver),
        )
        self._client = httpx.AsyncClient(
            transport=transport,
            follow_redirects=False,
            trust_env=False,
            timeout=httpx.Timeout(timeout),
            headers={"user-agent": user_agent},
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def send(self, url: str, headers: Mapping[str, str], body: bytes) -> SendResult:
        started = self._monotonic()
        status: int | None = None
        kept: bytes = b""
        error: str | None = None
        try:
            async with asyncio.timeout(self._timeout):
                async with self._client.stream(
                    "POST", url, headers=dict(headers), content=body
                ) as answer:
                    status = answer.status_code
                    async for chunk in answer.aiter_raw():
                        kept += chunk[: self._max_body - len(kept)]
                        if len(kept) >= self._max_body:
                            break
        except TimeoutError:
            error = "timed out"
        except httpx.TimeoutException:
            error = "timed out"
        except httpx.ConnectError as exc:
            error = BLOCKED if str(exc) == BLOCKED else _short("connection failed", exc)
        except httpx.HTTPError as exc:
            error = _short("request failed", exc)
        except OSError as exc:
            error = _short("network error", exc)
        if status is not None and error is not None and error != BLOCKED:
            error = f"answer cut short: {error}"
        duration = int((self._monotonic() - started) * 1000)
        text = kept.decode("utf-8", "replace") if status is not None else None
        if status is not None and not 200 <= status < 300 and error is None:
            error = f"answered {status}"
        return SendResult(status=status, error=error, body=text, duration_ms=duration)


def _short(what: str, exc: BaseException) -> str:
    detail = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
    return f"{what}: {detail}"
