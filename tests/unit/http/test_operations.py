"""Operations endpoints, problem+json, request ids and metrics of the walking skeleton."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest
from litestar import get
from litestar.testing import TestClient

from adapters.http.services import SERVICES
from app.cli import migrate
from app.factory import create_app
from tests.unit.conftest import SettingsFactory


def test_health_is_healthy_without_touching_dependencies(make_settings: SettingsFactory) -> None:
    app = create_app(make_settings(DATABASE_URL="postgresql+asyncpg://x@127.0.0.1:1/x"))
    with TestClient(app) as client:
        response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "healthy"}


def test_ready_reports_the_database(make_settings: SettingsFactory) -> None:
    settings = make_settings()
    migrate(settings)
    with TestClient(create_app(settings)) as client:
        response = client.get("/health/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"database": "ok", "redis": "disabled"}}


def test_ready_is_503_until_the_database_is_migrated(make_settings: SettingsFactory) -> None:
    settings = make_settings()
    with TestClient(create_app(settings)) as client:
        before = client.get("/health/ready")
        migrate(settings)
        after = client.get("/health/ready")
    assert before.status_code == 503
    assert before.json()["checks"]["database"] == "failing"
    assert after.status_code == 200


def test_ready_is_503_naming_a_refused_database(make_settings: SettingsFactory) -> None:
    app = create_app(make_settings(DATABASE_URL="postgresql+asyncpg://x@127.0.0.1:1/x"))
    with TestClient(app) as client:
        response = client.get("/health/ready")
    assert response.status_code == 503
    assert response.json()["checks"]["database"] == "failing"


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A TCP port that accepts connections and never answers (a hung database)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    server.close()


def test_ready_gives_up_on_a_hung_database_after_the_timeout(
    make_settings: SettingsFactory, silent_port: int
) -> None:
    settings = make_settings(
        DATABASE_URL=f"postgresql+asyncpg://x@127.0.0.1:{silent_port}/x", HEALTH_CHECK_TIMEOUT="0.3"
    )
    with TestClient(create_app(settings), timeout=10) as client:
        response = client.get("/health/ready")
    assert response.status_code == 503
    assert response.json()["checks"]["database"] == "failing"


def test_unknown_route_is_problem_json_with_request_id(make_settings: SettingsFactory) -> None:
    with TestClient(create_app(make_settings())) as client:
        response = client.get("/v1/nowhere")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == 404
    assert {"type", "title", "detail"} <= body.keys()
    assert body["request_id"] == response.headers["x-request-id"]


@pytest.mark.parametrize(
    ("sent", "kept"),
    [("abc-123_x.y", True), ("x" * 128, True), ("x" * 129, False), ("bad id!", False), ("", False)],
)
def test_request_id_is_kept_only_when_sane(
    make_settings: SettingsFactory, sent: str, kept: bool
) -> None:
    with TestClient(create_app(make_settings())) as client:
        response = client.get("/health", headers={"X-Request-ID": sent})
    returned = response.headers["x-request-id"]
    assert (returned == sent) is kept
    assert 1 <= len(returned) <= 128


def test_a_bug_is_a_clean_500_without_trace(make_settings: SettingsFactory) -> None:
    @get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internal detail in /srv/app.py line 3")

    app = create_app(make_settings())
    app.register(boom)
    with TestClient(app) as client:
        response = client.get("/boom")
    assert response.status_code == 500
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "secret internal detail" not in response.text
    assert "Traceback" not in response.text
    assert response.json()["request_id"] == response.headers["x-request-id"]


def test_metrics_count_requests_by_route_template(make_settings: SettingsFactory) -> None:
    @get("/probe/{item_id:str}")
    async def probe(item_id: str) -> dict[str, str]:
        return {"id": item_id}

    app = create_app(make_settings())
    app.register(probe)
    with TestClient(app) as client:
        for item in ("a", "b", "c"):
            assert client.get(f"/probe/{item}").status_code == 200
        text = client.get("/metrics").text
    assert 'route="/probe/{item_id}"' in text
    assert 'route="/probe/a"' not in text
    assert "taskhub_http_request_duration_seconds_bucket" in text


def test_docs_and_openapi_are_served(make_settings: SettingsFactory) -> None:
    with TestClient(create_app(make_settings())) as client:
        assert client.get("/docs").status_code == 200
        spec = client.get("/openapi.json")
    assert spec.status_code == 200
    assert spec.json()["openapi"].startswith("3.1")
    assert "/health/ready" in spec.json()["paths"]


def test_request_body_over_one_mebibyte_is_413(make_settings: SettingsFactory) -> None:
    from litestar import post

    @post("/echo-size")
    async def echo(data: dict[str, str]) -> dict[str, int]:
        return {"n": len(data)}

    app = create_app(make_settings())
    app.register(echo)
    with TestClient(app) as client:
        big = b'{"a": "' + b"x" * (1024 * 1024 + 10) + b'"}'
        response = client.post(
            "/echo-size", content=big, headers={"content-type": "application/json"}
        )
    assert response.status_code == 413
    assert response.headers["content-type"].startswith("application/problem+json")


def test_a_dead_database_is_503_not_500(make_settings: SettingsFactory) -> None:
    app = create_app(make_settings(DATABASE_URL="postgresql+asyncpg://x@127.0.0.1:1/x"))
    with TestClient(app) as client:
        signup = client.post(
            "/v1/users", json={"email": "a@example.com", "password": "pw-12345678"}
        )
        listing = client.get("/v1/tasks", headers={"Authorization": "Bearer ths_unknown"})
    for response in (signup, listing):
        assert response.status_code == 503
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.headers["retry-after"] == "1"


def test_ready_says_draining_once_shutdown_began(make_settings: SettingsFactory) -> None:
    settings = make_settings()
    migrate(settings)
    app = create_app(settings)
    with TestClient(app) as client:
        app.state[SERVICES].draining.begin()
        response = client.get("/health/ready")
        live = client.get("/health")
    assert response.status_code == 503
    assert response.json() == {
        "status": "draining",
        "checks": {"database": "ok", "redis": "disabled"},
    }
    assert live.status_code == 200


def test_metrics_report_the_pool_capacity_for_saturation_alerts(
    make_settings: SettingsFactory,
) -> None:
    settings = make_settings(
        DATABASE_URL="postgresql+asyncpg://x@127.0.0.1:1/x",
        SQLALCHEMY_POOL_SIZE="7",
        SQLALCHEMY_POOL_OVERFLOW="3",
    )
    with TestClient(create_app(settings)) as client:
        text = client.get("/metrics").text
    assert "taskhub_db_pool_capacity 10.0" in text.splitlines()
