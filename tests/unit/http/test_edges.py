"""HEAD wherever GET works, and ROOT_PATH: serving under a path prefix."""

from __future__ import annotations

import pytest
from litestar import Litestar

from app.settings import SettingsError, load_settings
from tests.unit.http.conftest import Account, Api, ApiFactory, bearer

# An endless answer: the test client reads a GET to its end, so the stream is checked apart.
_ENDLESS = "/v1/changes/stream"


def _get_paths(app: Litestar) -> list[str]:
    return sorted(
        route.path
        for route in app.routes
        if "GET" in getattr(route, "methods", ())
        and "{" not in route.path
        and route.path != _ENDLESS
    )


def test_head_answers_like_get_without_a_body(api: Api, alice: Account) -> None:
    task = api.create_task(alice.token, title="headed")
    paths = [*_get_paths(api.app), f"/v1/tasks/{task['id']}"]
    assert {"/health", "/health/ready", "/metrics", "/openapi.json", "/v1/tasks"} <= set(paths)
    for path in paths:
        get = api.client.get(path, headers=alice.auth)
        head = api.client.head(path, headers=alice.auth)
        assert head.status_code == get.status_code, path
        assert head.content == b"", path
        if path != "/metrics":  # its body changes with every request counted
            assert head.headers.get("content-length") == get.headers.get("content-length"), path
        for name in ("content-type", "etag", "ratelimit-limit"):
            assert (name in head.headers) == (name in get.headers), (path, name)


def test_head_of_the_change_stream_answers_its_headers_at_once(api: Api, alice: Account) -> None:
    head = api.client.head(_ENDLESS, headers=alice.auth)
    assert head.status_code == 200
    assert head.headers["content-type"].startswith("text/event-stream")
    assert head.content == b""


def test_head_keeps_conditional_requests_and_errors(api: Api, alice: Account) -> None:
    task = api.create_task(alice.token)
    path = f"/v1/tasks/{task['id']}"
    etag = api.client.get(path, headers=alice.auth).headers["etag"]
    assert api.client.head(path, headers={**alice.auth, "If-None-Match": etag}).status_code == 304
    assert api.client.head(path).status_code == 401
    assert api.client.head("/v1/nowhere").status_code == 404
    # Only GET routes: a POST-only path still refuses HEAD.
    assert api.client.head("/v1/auth/sessions").status_code == 405


def test_head_is_counted_as_head(api: Api) -> None:
    api.client.head("/openapi.json")
    metrics = api.client.get("/metrics").text
    assert 'taskhub_http_requests_total{method="HEAD",route="/openapi.json",status="200"}' in (
        metrics
    )


@pytest.mark.parametrize("prefixed", [True, False], ids=["proxy-keeps-prefix", "proxy-strips"])
def test_root_path_is_in_location_link_and_openapi(make_api: ApiFactory, prefixed: bool) -> None:
    api = make_api(ROOT_PATH="/taskhub")
    at = "/taskhub" if prefixed else ""
    email = "rooted@example.com"
    assert api.client.post(f"{at}/v1/users", json={"email": email, "password": "pw long enough"})
    token = api.client.post(
        f"{at}/v1/auth/sessions", json={"email": email, "password": "pw long enough"}
    ).json()["token"]
    for _ in range(2):
        made = api.client.post(f"{at}/v1/tasks", json={"title": "t"}, headers=bearer(token))
        assert made.status_code == 201
        assert made.headers["location"] == f"/taskhub/v1/tasks/{made.json()['id']}"
    page = api.client.get(f"{at}/v1/tasks?limit=1&sort=created_at", headers=bearer(token))
    assert page.headers["link"].startswith("</taskhub/v1/tasks?limit=1&sort=created_at&cursor=")
    followed = page.headers["link"][1:].split(">", 1)[0]
    assert api.client.get(followed, headers=bearer(token)).status_code == 200
    spec = api.client.get(f"{at}/openapi.json").json()
    assert spec["servers"] == [{"url": "/taskhub"}]
    assert api.client.get(f"{at}/health").status_code == 200


def test_a_root_path_that_is_also_inside_paths_routes_right(make_api: ApiFactory) -> None:
    api = make_api(ROOT_PATH="/api")
    alice = api.account()  # through /v1/... (a proxy that strips the prefix)
    for path in ("/api/v1/api-keys", "/v1/api-keys"):
        assert api.client.get(path, headers=alice.auth).status_code == 200, path


def test_without_root_path_openapi_serves_from_the_root(api: Api) -> None:
    assert api.client.get("/openapi.json").json()["servers"] == [{"url": "/"}]


@pytest.mark.parametrize("bad", ["taskhub", "/taskhub/", "/task hub", "//x"])
def test_a_bad_root_path_is_refused(bad: str) -> None:
    with pytest.raises(SettingsError, match="ROOT_PATH"):
        load_settings(environ={"ROOT_PATH": bad}, dotenv_path=None)
