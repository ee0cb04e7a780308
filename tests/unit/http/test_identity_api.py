"""Users, sessions and API keys over HTTP, against API.md "Authentication", "Users and sessions",
"API keys" and "Rate limits"."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.unit.http.conftest import (
    SERVICE_TOKEN,
    Account,
    Api,
    ApiFactory,
    bearer,
    fresh_email,
)

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
KEY_FIELDS = {
    "id",
    "name",
    "prefix",
    "scopes",
    "created_at",
    "expires_at",
    "last_used_at",
    "created_by_key_id",
    "project_ids",
}


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert {"type", "title", "detail"} <= body.keys()
    return body


def unauthenticated(response: httpx.Response) -> dict[str, Any]:
    body = problem(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer")
    return body


def is_utc_time(value: str) -> bool:
    if not value.endswith("Z"):
        return False
    return datetime.fromisoformat(value).utcoffset() == timedelta(0)


# --- users -----------------------------------------------------------------------------------


def test_sign_up_answers_201_with_the_user(api: Api) -> None:
    response = api.register("Ada@Example.COM", name="  Ada  ")
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"id", "email", "name", "created_at"}
    assert UUID.match(body["id"])
    assert body["email"] == "Ada@example.com"  # domain lower-cased, local part kept
    assert body["name"] == "Ada"
    assert is_utc_time(body["created_at"])
    assert "password" not in response.text


def test_sign_up_without_name_gives_null_name(api: Api) -> None:
    body = api.register(fresh_email()).json()
    assert body["name"] is None


@pytest.mark.parametrize("variant", ["taken@example.com", "TAKEN@EXAMPLE.COM", "Taken@example.com"])
def test_sign_up_with_a_taken_email_is_409_case_insensitive(api: Api, variant: str) -> None:
    assert api.register("taken@example.com").status_code == 201
    problem(api.register(variant), 409)
    assert len(api.rows("users")) == 1


@pytest.mark.parametrize("password", ["short", "x" * 7, "x" * 129])
def test_sign_up_with_a_bad_password_is_422_naming_password(api: Api, password: str) -> None:
    body = problem(api.register(password=password), 422)
    assert [e["field"] for e in body["errors"]] == ["password"]
    assert api.rows("users") == {}


@pytest.mark.parametrize("password", ["xyz-4-ab", "x" * 128])
def test_sign_up_accepts_passwords_at_the_bounds(api: Api, password: str) -> None:
    assert api.register(password=password).status_code == 201


def test_sign_up_is_403_when_disabled(make_api: ApiFactory) -> None:
    api = make_api(ALLOW_SIGNUP="false")
    problem(api.register(), 403)
    assert api.rows("users") == {}


def test_sign_up_never_stores_the_password_in_clear(api: Api) -> None:
    api.register("clear@example.com", password="a-very-unusual-password")
    (user,) = api.rows("users").values()
    assert "a-very-unusual-password" not in repr(user)
    assert user.password_hash.startswith("$argon2id$")


# --- sessions --------------------------------------------------------------------------------


def test_log_in_answers_201_with_token_expiry_and_user(api: Api) -> None:
    email = fresh_email()
    user = api.register(email).json()
    response = api.login(email)
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"token", "expires_at", "user"}
    assert body["user"] == user
    assert len(body["token"]) >= 32
    assert is_utc_time(body["expires_at"])
    assert datetime.fromisoformat(body["expires_at"]) > datetime.now(UTC)


def test_log_in_email_is_case_insensitive(api: Api) -> None:
    api.register("mixed@example.com")
    assert api.login("MIXED@Example.com").status_code == 201


def test_session_lifetime_follows_session_ttl(make_api: ApiFactory) -> None:
    api = make_api(SESSION_TTL="120")
    email = fresh_email()
    api.register(email)
    expires = datetime.fromisoformat(api.login(email).json()["expires_at"])
    assert timedelta(seconds=100) < expires - datetime.now(UTC) <= timedelta(seconds=120)


def test_log_in_failure_is_the_same_for_unknown_email_and_wrong_password(api: Api) -> None:
    email = fresh_email()
    api.register(email)
    unknown = unauthenticated(api.login(fresh_email("nobody")))
    wrong = unauthenticated(api.login(email, "wrong password!"))
    for name in ("type", "title", "detail", "status"):
        assert unknown[name] == wrong[name]
    assert api.rows("sessions") == {}


def test_log_in_is_rate_limited_with_retry_after(make_api: ApiFactory) -> None:
    api = make_api(RATE_LIMIT_LOGIN="3/minute")
    email = fresh_email()
    api.register(email)
    answers = [api.login(email, "wrong password!").status_code for _ in range(3)]
    assert answers == [401, 401, 401]
    limited = api.login(email)  # even the right password, once over the limit
    problem(limited, 429)
    assert int(limited.headers["retry-after"]) >= 1
    assert api.rows("sessions") == {}


def test_log_in_limit_is_per_email_too(make_api: ApiFactory) -> None:
    api = make_api(RATE_LIMIT_LOGIN="3/minute")
    for _ in range(3):
        api.login("victim@example.com", "guess guess guess")
    assert api.login("VICTIM@example.com", "guess guess guess").status_code == 429


def test_log_out_is_204_and_the_token_stops_at_once(api: Api, alice: Account) -> None:
    assert api.client.get("/v1/users/me", headers=alice.auth).status_code == 200
    response = api.client.delete("/v1/auth/sessions/current", headers=alice.auth)
    assert response.status_code == 204
    assert response.content == b""
    unauthenticated(api.client.get("/v1/users/me", headers=alice.auth))
    unauthenticated(api.client.delete("/v1/auth/sessions/current", headers=alice.auth))


def test_log_out_ends_only_that_session(api: Api, alice: Account) -> None:
    other = api.login(alice.email).json()["token"]
    api.client.delete("/v1/auth/sessions/current", headers=alice.auth)
    assert api.client.get("/v1/users/me", headers=bearer(other)).status_code == 200


def test_log_out_without_a_token_is_401(api: Api) -> None:
    unauthenticated(api.client.delete("/v1/auth/sessions/current"))


def test_me_is_the_calling_user(api: Api, alice: Account) -> None:
    response = api.client.get("/v1/users/me", headers=alice.auth)
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == alice.id
    assert body["email"] == alice.email
    assert set(body) == {"id", "email", "name", "created_at"}
    assert is_utc_time(body["created_at"])


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer not-a-real-token"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer thk_notarealkey0000000000000000000000000"},
        {"Authorization": "Bearer " + "x" * 5000},
    ],
)
def test_me_without_valid_credentials_is_401_with_www_authenticate(
    api: Api, headers: dict[str, str]
) -> None:
    unauthenticated(api.client.get("/v1/users/me", headers=headers))


# --- API keys --------------------------------------------------------------------------------


def test_issuing_a_key_answers_201_with_the_secret_once(api: Api, alice: Account) -> None:
    response = api.issue_key(alice.token, ["tasks:read", "tasks:write"], name=" ci ")
    assert response.status_code == 201
    body = response.json()
    assert set(body) == KEY_FIELDS | {"key"}
    assert body["key"].startswith("thk_")
    assert len(body["key"]) >= 4 + 32
    assert body["key"].startswith(body["prefix"])
    assert body["prefix"] != body["key"]
    assert sorted(body["scopes"]) == ["tasks:read", "tasks:write"]
    assert body["name"] == "ci"
    assert UUID.match(body["id"])
    assert is_utc_time(body["created_at"])
    assert body["expires_at"] is None
    assert body["last_used_at"] is None
    assert body["created_by_key_id"] is None  # issued with a session


def test_listing_keys_never_shows_a_secret(api: Api, alice: Account) -> None:
    secrets = [api.key(alice.token, ["tasks:read"], name=f"k{i}") for i in range(2)]
    response = api.client.get("/v1/api-keys", headers=alice.auth)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"items", "next_cursor"}
    assert body["next_cursor"] is None
    assert "link" not in response.headers
    assert [k["name"] for k in body["items"]] == ["k1", "k0"]  # newest first
    for item in body["items"]:
        assert set(item) == KEY_FIELDS
    for secret in secrets:
        assert secret not in response.text
        assert secret[len("thk_") :] not in response.text


def test_a_used_key_shows_last_used_at(api: Api, alice: Account) -> None:
    secret = api.key(alice.token, ["tasks:read"])
    assert api.client.get("/v1/tasks", headers=bearer(secret)).status_code == 200
    (item,) = api.client.get("/v1/api-keys", headers=alice.auth).json()["items"]
    assert item["last_used_at"] is not None
    assert is_utc_time(item["last_used_at"])


def test_a_key_with_an_expiry_in_the_future_works(api: Api, alice: Account) -> None:
    later = (datetime.now(UTC) + timedelta(days=1)).isoformat().replace("+00:00", "Z")
    response = api.issue_key(alice.token, ["tasks:read"], expires_at=later)
    assert response.status_code == 201
    assert is_utc_time(response.json()["expires_at"])
    assert api.client.get("/v1/tasks", headers=bearer(response.json()["key"])).status_code == 200


def test_an_expiry_in_the_past_is_422(api: Api, alice: Account) -> None:
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    body = problem(api.issue_key(alice.token, ["tasks:read"], expires_at=past), 422)
    assert "expires_at" in [e["field"] for e in body["errors"]]
    assert api.rows("api_keys") == {}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "k", "scopes": ["tasks:delete"]}, "scopes"),
        ({"name": "k", "scopes": []}, "scopes"),
        ({"name": "", "scopes": ["tasks:read"]}, "name"),
        ({"name": "x" * 101, "scopes": ["tasks:read"]}, "name"),
        ({"scopes": ["tasks:read"]}, "name"),
        ({"name": "k"}, "scopes"),
        ({"name": "k", "scopes": ["tasks:read"], "prefix": "thk_x"}, "prefix"),
    ],
)
def test_a_bad_key_request_is_422_naming_the_field(
    api: Api, alice: Account, body: dict[str, Any], field: str
) -> None:
    response = api.client.post("/v1/api-keys", json=body, headers=alice.auth)
    errors = problem(response, 422)["errors"]
    assert any(e["field"].split("[")[0] == field for e in errors), errors
    assert api.rows("api_keys") == {}


def test_a_read_only_key_cannot_write_tasks(api: Api, alice: Account) -> None:
    reader = bearer(api.key(alice.token, ["tasks:read"]))
    problem(api.client.post("/v1/tasks", json={"title": "no"}, headers=reader), 403)
    assert api.client.get("/v1/tasks", headers=reader).status_code == 200
    assert api.rows("tasks") == {}


def test_a_write_only_key_cannot_read_tasks(api: Api, alice: Account) -> None:
    writer = bearer(api.key(alice.token, ["tasks:write"]))
    assert api.client.post("/v1/tasks", json={"title": "yes"}, headers=writer).status_code == 201
    problem(api.client.get("/v1/tasks", headers=writer), 403)


def test_a_revoked_key_is_401_at_once(api: Api, alice: Account) -> None:
    issued = api.issue_key(alice.token, ["tasks:read"]).json()
    key = bearer(issued["key"])
    assert api.client.get("/v1/tasks", headers=key).status_code == 200
    response = api.client.delete(f"/v1/api-keys/{issued['id']}", headers=alice.auth)
    assert response.status_code == 204
    unauthenticated(api.client.get("/v1/tasks", headers=key))
    assert api.client.get("/v1/api-keys", headers=alice.auth).json()["items"] == []
    # Revoking twice: the key is gone.
    problem(api.client.delete(f"/v1/api-keys/{issued['id']}", headers=alice.auth), 404)


def test_a_key_without_keys_manage_cannot_reach_api_keys(api: Api, alice: Account) -> None:
    issued = api.issue_key(alice.token, ["tasks:read", "tasks:write"]).json()
    key = bearer(issued["key"])
    problem(api.client.get("/v1/api-keys", headers=key), 403)
    problem(api.issue_key(issued["key"], ["tasks:read"]), 403)
    problem(api.client.delete(f"/v1/api-keys/{issued['id']}", headers=key), 403)
    assert len(api.rows("api_keys")) == 1


def test_a_key_with_keys_manage_issues_only_scopes_it_holds(api: Api, alice: Account) -> None:
    manager = api.key(alice.token, ["keys:manage", "tasks:read"])
    problem(api.issue_key(manager, ["tasks:write"]), 403)
    problem(api.issue_key(manager, ["tasks:read", "tasks:write"]), 403)
    assert len(api.rows("api_keys")) == 1
    child = api.issue_key(manager, ["tasks:read"])
    assert child.status_code == 201
    assert api.client.get("/v1/api-keys", headers=bearer(manager)).status_code == 200


def test_a_session_may_issue_every_scope(api: Api, alice: Account) -> None:
    response = api.issue_key(alice.token, ["tasks:read", "tasks:write", "keys:manage"])
    assert response.status_code == 201


def test_user_b_cannot_see_or_revoke_user_a_keys(api: Api, alice: Account, bob: Account) -> None:
    issued = api.issue_key(alice.token, ["tasks:read"]).json()
    assert api.client.get("/v1/api-keys", headers=bob.auth).json()["items"] == []
    problem(api.client.delete(f"/v1/api-keys/{issued['id']}", headers=bob.auth), 404)
    assert api.client.get("/v1/tasks", headers=bearer(issued["key"])).status_code == 200


@pytest.mark.parametrize("key_id", ["not-a-uuid", "01234567-89ab-7def-8123-456789abcdef"])
def test_revoking_an_unknown_key_is_404(api: Api, alice: Account, key_id: str) -> None:
    problem(api.client.delete(f"/v1/api-keys/{key_id}", headers=alice.auth), 404)


def test_api_keys_need_credentials(api: Api) -> None:
    unauthenticated(api.client.get("/v1/api-keys"))
    unauthenticated(api.client.post("/v1/api-keys", json={"name": "k", "scopes": ["tasks:read"]}))
    unauthenticated(api.client.delete("/v1/api-keys/01234567-89ab-7def-8123-456789abcdef"))


# --- the service token -----------------------------------------------------------------------


@pytest.fixture
def service_api(make_api: ApiFactory) -> Api:
    return make_api(SERVICE_AUTH_TOKEN=SERVICE_TOKEN)


def service(user_id: str | None = None) -> dict[str, str]:
    headers = bearer(SERVICE_TOKEN)
    if user_id is not None:
        headers["X-Acting-User"] = user_id
    return headers


def test_the_service_acts_as_the_named_user(service_api: Api) -> None:
    alice = service_api.account()
    bob = service_api.account()
    mine = service_api.create_task(alice.token, title="alice's")
    service_api.create_task(bob.token, title="bob's")
    listed = service_api.client.get("/v1/tasks", headers=service(alice.id))
    assert listed.status_code == 200
    assert [t["id"] for t in listed.json()["items"]] == [mine["id"]]
    me = service_api.client.get("/v1/users/me", headers=service(alice.id))
    assert me.json()["id"] == alice.id
    created = service_api.client.post("/v1/tasks", json={"title": "s"}, headers=service(alice.id))
    assert created.status_code == 201
    own = service_api.client.get(f"/v1/tasks/{created.json()['id']}", headers=alice.auth)
    assert own.status_code == 200


def test_the_service_acting_for_an_unknown_user_is_401(service_api: Api) -> None:
    service_api.account()
    for acting in ("01234567-89ab-7def-8123-456789abcdef", "not-a-uuid", ""):
        unauthenticated(service_api.client.get("/v1/tasks", headers=service(acting)))


def test_the_service_without_acting_user_is_401_on_v1(service_api: Api) -> None:
    unauthenticated(service_api.client.get("/v1/tasks", headers=service()))
    unauthenticated(service_api.client.get("/v1/users/me", headers=service()))


def test_the_service_token_is_a_stranger_when_not_configured(api: Api, alice: Account) -> None:
    unauthenticated(api.client.get("/v1/tasks", headers=service(alice.id)))


def test_a_session_token_ignores_x_acting_user(api: Api, alice: Account, bob: Account) -> None:
    api.create_task(bob.token, title="bob's")
    headers = {**alice.auth, "X-Acting-User": bob.id}
    assert api.client.get("/v1/tasks", headers=headers).json()["items"] == []


# --- rate limits and request ids ---------------------------------------------------------------


def assert_rate_limit_headers(response: httpx.Response) -> None:
    for name in ("ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"):
        assert response.headers.get(name, "").isdigit(), (name, dict(response.headers))


def test_every_v1_response_carries_rate_limit_headers_and_a_request_id(
    api: Api, alice: Account
) -> None:
    task = api.create_task(alice.token)
    responses = [
        api.register(),
        api.login(alice.email),
        api.login(alice.email, "wrong password!"),  # 401
        api.client.get("/v1/users/me"),  # 401, no token
        api.client.get("/v1/users/me", headers=bearer("nope")),  # 401, bad token
        api.client.get("/v1/users/me", headers=alice.auth),
        api.client.get("/v1/tasks", headers=alice.auth),
        api.client.get(f"/v1/tasks/{task['id']}", headers=alice.auth),
        api.client.get("/v1/tasks/01234567-89ab-7def-8123-456789abcdef", headers=alice.auth),
        api.client.post("/v1/tasks", content=b"{", headers=alice.auth),  # 400/415
        api.client.post("/v1/tasks", json={"nope": 1}, headers=alice.auth),  # 422
        api.client.get("/v1/api-keys", headers=alice.auth),
        api.client.delete(f"/v1/tasks/{task['id']}", headers=alice.auth),  # 204
    ]
    assert {r.status_code for r in responses} >= {200, 201, 204, 401, 404, 422}
    for response in responses:
        assert_rate_limit_headers(response)
        assert response.headers.get("x-request-id")


def test_rate_limit_remaining_counts_down(make_api: ApiFactory) -> None:
    api = make_api(RATE_LIMIT_DEFAULT="100/hour")  # slow refill: nothing comes back in between
    alice = api.account()
    first = api.client.get("/v1/users/me", headers=alice.auth)
    second = api.client.get("/v1/users/me", headers=alice.auth)
    assert (
        int(second.headers["ratelimit-remaining"]) == int(first.headers["ratelimit-remaining"]) - 1
    )
    assert first.headers["ratelimit-limit"] == "100"


def test_over_the_default_limit_is_429_with_retry_after(make_api: ApiFactory) -> None:
    api = make_api(RATE_LIMIT_DEFAULT="5/minute")
    alice = api.account()  # sign-up and log-in are counted per client address
    statuses = [api.client.get("/v1/users/me", headers=alice.auth).status_code for _ in range(6)]
    assert statuses[:5] == [200] * 5
    limited = api.client.get("/v1/users/me", headers=alice.auth)
    assert statuses[5] == 429
    problem(limited, 429)
    assert int(limited.headers["retry-after"]) >= 1
    assert limited.headers["ratelimit-remaining"] == "0"
    assert limited.headers.get("x-request-id")


def test_the_default_limit_is_per_principal(make_api: ApiFactory) -> None:
    api = make_api(RATE_LIMIT_DEFAULT="5/minute")
    alice = api.account()
    for _ in range(6):
        api.client.get("/v1/users/me", headers=alice.auth)
    # Anonymous calls from the same address have used 2 (sign-up, log-in) of their own 5.
    bob_email = fresh_email()
    assert api.register(bob_email).status_code == 201
    bob = api.login(bob_email).json()["token"]
    assert api.client.get("/v1/users/me", headers=bearer(bob)).status_code == 200


def test_a_user_has_one_budget_across_sessions_keys_and_service_calls(
    make_api: ApiFactory,
) -> None:
    api = make_api(RATE_LIMIT_DEFAULT="6/hour", SERVICE_AUTH_TOKEN=SERVICE_TOKEN)
    alice = api.account()
    second_session = api.login(alice.email).json()["token"]
    keys = [api.key(alice.token, ["tasks:read"], f"k{i}") for i in range(2)]  # 2 of 6
    acting = {**bearer(SERVICE_TOKEN), "X-Acting-User": alice.id}
    callers = [bearer(second_session), bearer(keys[0]), bearer(keys[1]), acting]

    statuses = [api.client.get("/v1/tasks", headers=h).status_code for h in callers]
    over = [api.client.get("/v1/tasks", headers=h).status_code for h in callers]

    assert statuses == [200] * 4  # 6 spent: 2 issues and these 4
    assert over == [429] * 4  # no credential brings a budget of its own


def test_anonymous_failures_are_limited_per_address(make_api: ApiFactory) -> None:
    api = make_api(RATE_LIMIT_DEFAULT="5/minute")
    statuses = [api.client.get("/v1/tasks", headers=bearer("wrong")).status_code for _ in range(7)]
    assert statuses[:5] == [401] * 5
    assert statuses[-1] == 429


def test_operations_endpoints_are_not_rate_limited(make_api: ApiFactory) -> None:
    api = make_api(RATE_LIMIT_DEFAULT="5/minute")
    statuses = [api.client.get("/health").status_code for _ in range(10)]
    assert statuses == [200] * 10


def test_a_key_expiry_with_an_offset_comes_back_in_utc(api: Api, alice: Account) -> None:
    response = api.issue_key(alice.token, ["tasks:read"], expires_at="2030-01-01T12:00:00+02:00")
    assert response.status_code == 201
    assert response.json()["expires_at"] == "2030-01-01T10:00:00Z"
    (item,) = api.client.get("/v1/api-keys", headers=alice.auth).json()["items"]
    assert item["expires_at"] == "2030-01-01T10:00:00Z"


def test_sign_up_is_limited_per_client_address(make_api: ApiFactory) -> None:
    api = make_api(RATE_LIMIT_SIGNUP="2/hour")
    assert [api.register().status_code for _ in range(2)] == [201, 201]
    limited = api.register()
    problem(limited, 429)
    assert int(limited.headers["retry-after"]) >= 1
    assert len(api.rows("users")) == 2


def test_sign_up_refuses_a_common_password_naming_password(api: Api) -> None:
    body = problem(api.register(password="Password123"), 422)
    assert [e["field"] for e in body["errors"]] == ["password"]
    assert api.rows("users") == {}
