"""Logout and key revocation win against a request that is caching the credential at that very
moment (it read the credential as active just before the revocation)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import anyio.to_thread
import httpx
import pytest
from dependency_injector import providers
from litestar.testing import TestClient

from adapters.memory.principals import MemoryPrincipalCache
from app.factory import create_app
from domain.auth import Principal
from tests.unit.http.conftest import BASE_ENV, Api, bearer, fast_container


class HeldFill:
    """The principal cache, whose next `put` waits (in a worker thread, so the app keeps
    serving) until the test lets it go."""

    def __init__(self) -> None:
        self.inner = MemoryPrincipalCache()
        self.armed = False
        self.reached = threading.Event()
        self.release = threading.Event()

    async def get(self, key: str) -> Principal | None:
        return await self.inner.get(key)

    async def put(self, key: str, principal: Principal, ttl_seconds: int) -> None:
        if self.armed:
            self.armed = False
            self.reached.set()
            await anyio.to_thread.run_sync(self.release.wait, 10)
        await self.inner.put(key, principal, ttl_seconds)

    async def evict(self, credential_id: str) -> None:
        await self.inner.evict(credential_id)


@pytest.fixture
def held() -> Iterator[tuple[Api, HeldFill]]:
    cache = HeldFill()
    container = fast_container(dict(BASE_ENV))
    container.principal_cache.override(providers.Object(cache))
    app = create_app(container.settings(), container)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Api(app=app, container=container, client=client), cache


def race(api: Api, cache: HeldFill, token: str, revoke: Callable[[], httpx.Response]) -> None:
    """A request with `token` reads it, then the revocation lands before it caches it."""
    cache.inner = MemoryPrincipalCache()  # nothing cached: the next request reads the credential
    cache.armed = True
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(api.client.get, "/v1/tasks", headers=bearer(token))
        assert cache.reached.wait(10)
        assert revoke().status_code == 204
        cache.release.set()
        assert first.result(10).status_code == 200  # authenticated before the revocation


def test_logout_is_immediate_under_concurrent_use(held: tuple[Api, HeldFill]) -> None:
    api, cache = held
    alice = api.account()
    race(
        api,
        cache,
        alice.token,
        lambda: api.client.delete("/v1/auth/sessions/current", headers=alice.auth),
    )

    assert api.client.get("/v1/tasks", headers=alice.auth).status_code == 401


def test_key_revocation_is_immediate_under_concurrent_use(held: tuple[Api, HeldFill]) -> None:
    api, cache = held
    alice = api.account()
    created: Any = api.issue_key(alice.token, ["tasks:read"]).json()
    race(
        api,
        cache,
        created["key"],
        lambda: api.client.delete(f"/v1/api-keys/{created['id']}", headers=alice.auth),
    )

    assert api.client.get("/v1/tasks", headers=bearer(created["key"])).status_code == 401
