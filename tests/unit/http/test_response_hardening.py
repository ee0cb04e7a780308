"""Headers every answer carries, answers that must not be stored, CORS refusals as problem+json,
and paths that cannot write terminal escapes into console logs."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.unit.http.conftest import Account, Api, ApiFactory, bearer, fresh_email
from tests.unit.http.test_identity_api import problem


def test_every_answer_says_nosniff(api: Api, alice: Account) -> None:
    answers = [
        api.client.get("/health"),
        api.client.get("/openapi.json"),
        api.client.get("/v1/tasks", headers=alice.auth),
        api.client.get("/v1/tasks"),  # 401
        api.client.get("/v1/nowhere"),  # 404
        api.client.post("/v1/tasks", content=b"{", headers=alice.auth),  # 400
    ]
    for response in answers:
        assert response.headers.get("x-content-type-options") == "nosniff", response.url


def test_answers_holding_a_token_are_never_stored(api: Api, alice: Account) -> None:
    session = api.login(alice.email)
    assert session.status_code == 201
    assert session.headers.get("cache-control") == "no-store"
    key = api.issue_key(alice.token, ["tasks:read"])
    assert key.status_code == 201
    assert key.headers.get("cache-control") == "no-store"


def test_a_preflight_from_a_disallowed_origin_is_a_problem(make_api: ApiFactory) -> None:
    api = make_api(CORS_ORIGINS="https://app.example.com")
    asked = {"Access-Control-Request-Method": "GET"}
    allowed = api.client.options(
        "/v1/tasks", headers={"Origin": "https://app.example.com", **asked}
    )
    assert allowed.status_code == 204
    assert allowed.headers["access-control-allow-origin"] == "https://app.example.com"
    refused = api.client.options("/v1/tasks", headers={"Origin": "https://evil.example", **asked})
    body = problem(refused, 400)
    assert "Origin" in body["detail"]
    assert "access-control-allow-origin" not in refused.headers
    assert refused.headers.get("x-content-type-options") == "nosniff"
    assert refused.headers.get("x-request-id")


@pytest.mark.parametrize("path", ["/v1/%1b[31mred%1b[0m", "/v1/a%0d%0afake%20line", "/%07bell"])
def test_console_logs_escape_control_characters_in_paths(
    make_api: ApiFactory, stderr_logs: Callable[[], str], path: str
) -> None:
    api = make_api(LOG_FORMAT="console")
    response = api.client.get(path)
    assert response.status_code == 404
    logs = stderr_logs()
    assert not any(ch in logs for ch in "\x1b\x07\r"), repr(logs)
    lines = [ln for ln in logs.splitlines() if "status=404" in ln]
    assert len(lines) == 1, lines  # the path forged no line of its own
    assert any(escape in lines[0] for escape in ("\\x1b", "\\r", "\\x07")), lines[0]


def test_sign_up_then_use_token_headers(api: Api) -> None:
    """A session answer is no-store; an ordinary read is not."""
    account = api.account(fresh_email())
    response = api.client.get("/v1/users/me", headers=bearer(account.token))
    assert response.status_code == 200
    assert "no-store" not in response.headers.get("cache-control", "")
