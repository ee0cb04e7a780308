"""Black-box HTTP fixtures: an app on the in-memory adapters, a client, and helpers that sign up,
log in and issue keys through the public API only."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from itertools import count
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
from dependency_injector import providers
from litestar import Litestar
from litestar.testing import TestClient
from structlog._config import BoundLoggerLazyProxy

from adapters.security.passwords import Argon2idPasswordHasher
from app.container import Container, build_container
from app.factory import create_app
from app.settings import load_settings

PASSWORD = "correct horse battery staple"
SERVICE_TOKEN = "test-service-token-0123456789abcdef"

BASE_ENV = {
    "DATABASE_URL": "memory://",
    "LOG_FORMAT": "json",
    # Generous limits unless a test asks for tight ones.
    "RATE_LIMIT_DEFAULT": "100000/minute",
    "RATE_LIMIT_LOGIN": "100000/minute",
    "RATE_LIMIT_LOGIN_EMAIL": "100000/minute",
    "RATE_LIMIT_SIGNUP": "100000/minute",
}

_ROOT = Path(__file__).resolve().parents[3]


def run_probe(probe: str) -> dict[str, Any]:
    """Run `probe` (Python source printing one JSON line last) in a fresh interpreter with the
    test settings (`BASE_ENV`, MCP at its default), and return that line."""
    env = {**os.environ, **BASE_ENV, "PYTHONPATH": f"{_ROOT / 'src'}{os.pathsep}{_ROOT}"}
    env.pop("MCP_ENABLED", None)
    done = subprocess.run(
        [sys.executable, "-c", probe],
        env=env,
        cwd=_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    seen: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return seen


_emails = count(1)


def fresh_email(tag: str = "user") -> str:
    return f"{tag}{next(_emails)}@example.com"


@dataclass
class Account:
    id: str
    email: str
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return bearer(self.token)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class Api:
    """One running app (in-memory database) with a client and helpers over its public API."""

    app: Litestar
    container: Container
    client: TestClient[Litestar]
    accounts: list[Account] = field(default_factory=list)

    def register(
        self, email: str | None = None, password: str = PASSWORD, name: str | None = None
    ) -> httpx.Response:
        body: dict[str, Any] = {"email": email or fresh_email(), "password": password}
        if name is not None:
            body["name"] = name
        return self.client.post("/v1/users", json=body)

    def login(self, email: str, password: str = PASSWORD) -> httpx.Response:
        return self.client.post("/v1/auth/sessions", json={"email": email, "password": password})

    def account(self, email: str | None = None, password: str = PASSWORD) -> Account:
        """Sign up and log in a new user; its session token."""
        email = email or fresh_email()
        created = self.register(email, password)
        assert created.status_code == 201, created.text
        session = self.login(email, password)
        assert session.status_code == 201, session.text
        acc = Account(id=created.json()["id"], email=email, token=session.json()["token"])
        self.accounts.append(acc)
        return acc

    def issue_key(
        self, token: str, scopes: list[str], name: str = "key", expires_at: str | None = None
    ) -> httpx.Response:
        body: dict[str, Any] = {"name": name, "scopes": scopes}
        if expires_at is not None:
            body["expires_at"] = expires_at
        return self.client.post("/v1/api-keys", json=body, headers=bearer(token))

    def key(self, token: str, scopes: list[str], name: str = "key") -> str:
        """A new API key's secret."""
        response = self.issue_key(token, scopes, name)
        assert response.status_code == 201, response.text
        secret: str = response.json()["key"]
        return secret

    def create_task(self, token: str, **fields: Any) -> dict[str, Any]:
        fields.setdefault("title", "a task")
        response = self.client.post("/v1/tasks", json=fields, headers=bearer(token))
        assert response.status_code == 201, response.text
        task: dict[str, Any] = response.json()
        return task

    def rows(self, table: str) -> dict[str, Any]:
        rows: dict[str, Any] = self.container.memory_database().tables[table]
        return rows


ApiFactory = Callable[..., Api]


def fast_container(env: dict[str, str]) -> Container:
    """A container for `env` whose argon2id is cheap (the real defaults take 64 MiB a hash)."""
    container = build_container(load_settings(environ=env, dotenv_path=None))
    container.password_hasher.override(
        providers.Object(Argon2idPasswordHasher(time_cost=1, memory_cost=8 * 1024))
    )
    return container


@pytest.fixture
def make_api() -> Iterator[ApiFactory]:
    """`make_api(**env)`: a started app on `memory://` with the given variables set."""
    with ExitStack() as stack:

        def make(**overrides: str) -> Api:
            env = {**BASE_ENV, **overrides}
            container = fast_container(env)
            app = create_app(container.settings(), container)
            client = stack.enter_context(TestClient(app, raise_server_exceptions=False))
            return Api(app=app, container=container, client=client)

        yield make


@pytest.fixture
def api(make_api: ApiFactory) -> Api:
    return make_api()


@pytest.fixture
def alice(api: Api) -> Account:
    return api.account(fresh_email("alice"))


@pytest.fixture
def bob(api: Api) -> Account:
    return api.account(fresh_email("bob"))


@pytest.fixture
def stderr_logs(
    capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[], str]]:
    """Everything written to stderr during the test.

    structlog loggers keep the stream they first wrote to (cache_logger_on_first_use), which
    would be an earlier test's: make every logger bind afresh, without caching, while this test
    runs, and restore the previous configuration and caches afterwards."""
    saved = structlog.get_config()
    for obj in gc.get_objects():
        if isinstance(obj, BoundLoggerLazyProxy) and "bind" in vars(obj):
            monkeypatch.delattr(obj, "bind")
    text: list[str] = []

    def read() -> str:
        text.append(capfd.readouterr().err)
        return "".join(text)

    yield read
    structlog.configure(**saved)


# --- what the HTTP tests observe, against what the OpenAPI text documents ---------------------


@pytest.fixture(scope="session")
def documented_statuses() -> dict[tuple[str, str], set[int]]:
    """(METHOD, path template) -> the statuses the served OpenAPI document lists."""
    container = fast_container(dict(BASE_ENV))
    with TestClient(create_app(container.settings(), container)) as client:
        spec = client.get("/openapi.json").json()
    return {
        (verb.upper(), path): {int(status) for status in operation["responses"]}
        for path, item in spec["paths"].items()
        for verb, operation in item.items()
    }


@pytest.fixture(autouse=True)
def answers_are_documented(
    monkeypatch: pytest.MonkeyPatch, documented_statuses: dict[tuple[str, str], set[int]]
) -> Iterator[list[tuple[str, str, int]]]:
    """Every answer an HTTP test sees from a documented operation has a documented status.

    Records (method, route template, status) where the request middleware counts each answer,
    whichever app and client the test uses; routes a test adds itself are not in the document
    and are left out."""
    from adapters.http.middleware import RequestContextMiddleware

    seen: list[tuple[str, str, int]] = []
    count = RequestContextMiddleware._count

    def recording(
        self: RequestContextMiddleware, method: str, route: str, status: int, elapsed: float
    ) -> None:
        seen.append((method, route, status))
        count(self, method, route, status, elapsed)

    monkeypatch.setattr(RequestContextMiddleware, "_count", recording)
    yield seen
    undocumented = sorted(
        {
            (method, route, status)
            for method, route, status in seen
            if (method, route) in documented_statuses
            and status not in documented_statuses[(method, route)]
        }
    )
    assert not undocumented, f"answers the OpenAPI text does not document: {undocumented}"
