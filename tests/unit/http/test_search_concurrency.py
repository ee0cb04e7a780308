"""Searches (`q=` on the task list) are bounded per user: the user's next one waits for none
and gets 429 with Retry-After while CONCURRENT_SEARCHES_PER_USER of theirs are running."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import anyio.to_thread
import pytest
from dependency_injector import providers
from litestar.testing import TestClient

from app.factory import create_app
from tests.unit.http.conftest import BASE_ENV, Api, bearer, fast_container
from tests.unit.http.test_identity_api import problem


class HeldList:
    """ListTasks whose next call waits (in a worker thread) until the test lets it go."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.armed = False
        self.reached = threading.Event()
        self.release = threading.Event()

    async def execute(self, *args: Any) -> Any:
        if self.armed:
            self.armed = False
            self.reached.set()
            await anyio.to_thread.run_sync(self.release.wait, 10)
        return await self.real.execute(*args)


@pytest.fixture
def held() -> Iterator[tuple[Api, HeldList]]:
    container = fast_container({**BASE_ENV, "CONCURRENT_SEARCHES_PER_USER": "1"})
    held = HeldList(container.list_tasks())
    container.list_tasks.override(providers.Object(held))
    app = create_app(container.settings(), container)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Api(app=app, container=container, client=client), held


def test_a_users_searches_beyond_the_cap_get_429_and_others_are_served(
    held: tuple[Api, HeldList],
) -> None:
    api, lists = held
    alice, bob = api.account(), api.account()
    alice_key = api.key(alice.token, ["tasks:read"])
    lists.armed = True
    with ThreadPoolExecutor(1) as pool:
        running = pool.submit(api.client.get, "/v1/tasks", params={"q": "a"}, headers=alice.auth)
        assert lists.reached.wait(10)

        refused = api.client.get("/v1/tasks", params={"q": "b"}, headers=bearer(alice_key))
        plain = api.client.get("/v1/tasks", headers=alice.auth)
        other = api.client.get("/v1/tasks", params={"q": "b"}, headers=bob.auth)

        lists.release.set()
        assert running.result(10).status_code == 200
    after = api.client.get("/v1/tasks", params={"q": "c"}, headers=alice.auth)

    body = problem(refused, 429)
    assert "1 search" in body["detail"]
    assert int(refused.headers["retry-after"]) >= 1
    assert (plain.status_code, other.status_code, after.status_code) == (200, 200, 200)
