"""No token, key or password in clear anywhere but the one answer that hands it out: not in the
database, not in the logs, not in other responses, not in the process's stores (issue 3)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import structlog

from tests.unit.http.conftest import SERVICE_TOKEN, Api, ApiFactory, bearer, fresh_email

PASSWORD = "Unmistakable-Passw0rd-4417"
WRONG_PASSWORD = "Wrong-But-Still-Secret-9931"


def deep_text(value: Any, seen: set[int] | None = None) -> str:
    """repr of a value and of everything reachable through its attributes and containers."""
    seen = set() if seen is None else seen
    if id(value) in seen:
        return ""
    seen.add(id(value))
    parts = [repr(value)]
    if isinstance(value, dict):
        parts += [deep_text(k, seen) + deep_text(v, seen) for k, v in value.items()]
    elif isinstance(value, list | tuple | set | frozenset):
        parts += [deep_text(v, seen) for v in value]
    elif hasattr(value, "__dict__") and not isinstance(value, type):
        parts += [deep_text(v, seen) for v in vars(value).values()]
    elif hasattr(value, "__slots__"):
        parts += [deep_text(getattr(value, s, None), seen) for s in value.__slots__]
    return "\n".join(parts)


def test_no_secret_in_database_logs_or_other_answers(
    make_api: ApiFactory, stderr_logs: Callable[[], str]
) -> None:
    api: Api = make_api(SERVICE_AUTH_TOKEN=SERVICE_TOKEN, LOG_FORMAT="json", LOG_LEVEL="DEBUG")
    structlog.configure(cache_logger_on_first_use=False)  # see stderr_logs
    email = fresh_email("secret")
    answers: list[httpx.Response] = []

    def call(method: str, url: str, **kwargs: Any) -> httpx.Response:
        response = api.client.request(method, url, **kwargs)
        assert response.status_code < 500, response.text
        answers.append(response)
        return response

    user = call("POST", "/v1/users", json={"email": email, "password": PASSWORD}).json()
    call("POST", "/v1/auth/sessions", json={"email": email, "password": WRONG_PASSWORD})
    login = api.client.post("/v1/auth/sessions", json={"email": email, "password": PASSWORD})
    token = login.json()["token"]
    issued = api.client.post(
        "/v1/api-keys", json={"name": "ci", "scopes": ["tasks:read"]}, headers=bearer(token)
    )
    key = issued.json()["key"]
    hook_body = {"url": "https://hooks.example.com/h", "events": ["task.*"]}
    hook = api.client.post("/v1/webhooks", json=hook_body, headers=bearer(token)).json()
    rotated = api.client.post(f"/v1/webhooks/{hook['id']}/rotate-secret", headers=bearer(token))
    webhook_secrets = [hook["secret"], rotated.json()["secret"]]
    # Use every credential, successfully and not.
    call("GET", "/v1/users/me", headers=bearer(token))
    call("POST", "/v1/tasks", json={"title": "t"}, headers=bearer(token))
    call("GET", "/v1/tasks", headers=bearer(key))
    call("POST", "/v1/tasks", json={"title": "t"}, headers=bearer(key))  # 403
    call("GET", "/v1/api-keys", headers=bearer(token))
    call("GET", "/v1/webhooks", headers=bearer(token))
    call("GET", f"/v1/webhooks/{hook['id']}", headers=bearer(token))
    call("PATCH", f"/v1/webhooks/{hook['id']}", json={"secret": "x"}, headers=bearer(token))
    call("GET", "/v1/tasks", headers={**bearer(SERVICE_TOKEN), "X-Acting-User": user["id"]})
    call("GET", "/v1/tasks", headers=bearer(SERVICE_TOKEN))  # 401: no acting user
    call("GET", "/v1/tasks", headers=bearer(key + "x"))  # 401: a near miss
    call("GET", "/v1/tasks", headers={"Authorization": f"Basic {token}"})
    call("POST", "/v1/users", json={"email": email, "password": PASSWORD})  # 409
    call("POST", "/v1/users", json={"email": "bad", "password": PASSWORD})  # 422
    call("POST", "/v1/tasks", content=f'{{"title": "{key}",'.encode(), headers=bearer(token))
    call("DELETE", f"/v1/api-keys/{issued.json()['id']}", headers=bearer(token))
    call("GET", "/v1/tasks", headers=bearer(key))  # 401: revoked
    call("DELETE", "/v1/auth/sessions/current", headers=bearer(token))
    call("GET", "/v1/users/me", headers=bearer(token))  # 401: logged out
    assert login.status_code == issued.status_code == 201

    logs = stderr_logs()
    # The capture works: it holds the JSON access lines of this very test.
    lines = [json.loads(line) for line in logs.splitlines() if line.startswith("{")]
    routes = {line.get("route") for line in lines if line.get("event") == "request"}
    assert {"/v1/auth/sessions", "/v1/api-keys", "/v1/tasks"} <= routes
    assert any(line.get("event") == "auth denied" for line in lines) or any(
        line.get("status") == 401 for line in lines
    )

    places = {
        "logs": logs,
        "database": deep_text(api.container.memory_database().tables),
        "principal cache": deep_text(api.container.principal_cache()),
        "rate limiter": deep_text(api.container.rate_limiter()),
        "idempotency store": deep_text(api.container.idempotency_store()),
        "other answers": "\n".join(f"{r.headers}\n{r.text}" for r in answers),
    }
    secrets = {
        "session token": token,
        "api key": key,
        "api key without prefix": key.removeprefix("thk_"),
        "password": PASSWORD,
        "wrong password": WRONG_PASSWORD,
        "service token": SERVICE_TOKEN,
        "webhook secret": webhook_secrets[0],
        "rotated webhook secret": webhook_secrets[1],
        "webhook secret without prefix": webhook_secrets[0].removeprefix("whsec_"),
    }
    for place, text in places.items():
        for name, secret in secrets.items():
            assert secret not in text, f"the {name} is in the {place}"
    # The stored rows do exist (the scan looked at something).
    assert api.rows("sessions")
    assert api.rows("api_keys")
    assert api.rows("users")
    assert api.rows("webhooks")


def test_the_key_prefix_shown_in_lists_is_not_enough_to_authenticate(
    make_api: ApiFactory,
) -> None:
    api = make_api()
    acc = api.account()
    issued = api.issue_key(acc.token, ["tasks:read"]).json()
    assert len(issued["key"]) - len(issued["prefix"]) >= 32
    response = api.client.get("/v1/tasks", headers=bearer(issued["prefix"]))
    assert response.status_code == 401
