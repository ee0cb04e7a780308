"""Malformed requests get a 4xx problem+json naming what is wrong, change nothing, and are never
a 500 (API.md "Conventions")."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.unit.http.conftest import Account, Api, bearer
from tests.unit.http.test_identity_api import problem

MIB = 1024 * 1024


@pytest.fixture
def world(api: Api, alice: Account) -> Iterator[tuple[Api, Account, dict[str, Any]]]:
    """Alice with a task and a key; after the test, nothing in the database may have changed."""
    task = api.create_task(alice.token, title="existing", description="keep")
    api.key(alice.token, ["tasks:read"])
    before = snapshot(api)
    yield api, alice, task
    assert snapshot(api) == before, "a rejected request changed the database"


def snapshot(api: Api) -> dict[str, dict[str, Any]]:
    return {name: dict(rows) for name, rows in api.container.memory_database().tables.items()}


def send(
    api: Api,
    method: str,
    url: str,
    content: bytes,
    content_type: str | None = "application/json",
    token: str | None = None,
) -> httpx.Response:
    headers = bearer(token) if token else {}
    if content_type is not None:
        headers["Content-Type"] = content_type
    response = api.client.request(method, url, content=content, headers=headers)
    assert response.status_code < 500, response.text
    return response


def targets(task_id: str) -> list[tuple[str, str, bool]]:
    """(method, url, needs a token) of every endpoint that takes a body."""
    return [
        ("POST", "/v1/users", False),
        ("POST", "/v1/auth/sessions", False),
        ("POST", "/v1/api-keys", True),
        ("POST", "/v1/tasks", True),
        ("PATCH", f"/v1/tasks/{task_id}", True),
    ]


FIRST_FIELD = {  # a field each endpoint knows, so the parser gets past it to the fault
    "/v1/users": "email",
    "/v1/auth/sessions": "email",
    "/v1/api-keys": "name",
    "/v1/tasks": "title",
}
NOT_JSON = [
    b"{",
    b"not json",
    b"{'%s': 'single quotes'}",
    b'{"%s": "x",}',
    b'{"%s": "x"',
    b'{"%s": NaN}',
    b"\x00\x01\x02",
    b"",
    b"   ",
]
NOT_UTF8 = [
    b'{"%s": "\xff\xfe"}',
    b'{"%s": "caf\xe9"}',  # latin-1
    b'{"%s": "\xc3\x28"}',  # a broken two-byte sequence
    b'{"%s": "\xed\xa0\x80"}',  # an encoded surrogate
    "{}".encode("utf-16"),
]


def with_field(template: bytes, url: str) -> bytes:
    field = FIRST_FIELD.get(url, "title").encode()
    return template.replace(b"%s", field)


@pytest.mark.parametrize("template", NOT_JSON + NOT_UTF8)
def test_a_body_that_is_not_json_or_not_utf8_is_400(
    world: tuple[Api, Account, dict[str, Any]], template: bytes
) -> None:
    api, alice, task = world
    for method, url, auth in targets(task["id"]):
        content = with_field(template, url)
        response = send(api, method, url, content, token=alice.token if auth else None)
        problem(response, 400)


@pytest.mark.parametrize(
    ("url", "content"),
    [
        ("/v1/tasks", b'{"colour": "red",}'),  # an unknown field, then a syntax error
        ("/v1/tasks", b'{"title": 1,}'),  # a wrong type, then a syntax error
        ("/v1/tasks", b'{"colour": "caf\xe9"}'),  # an unknown field, then bytes not UTF-8
        ("/v1/tasks", b'{"title": 1} trailing'),
        ("/v1/users", b'{"email": "a@example.com"} trailing'),  # a missing field, then junk
    ],
)
def test_a_body_that_is_not_json_is_400_even_after_a_field_that_does_not_fit(
    world: tuple[Api, Account, dict[str, Any]], url: str, content: bytes
) -> None:
    api, alice, _ = world
    problem(send(api, "POST", url, content, token=alice.token), 400)


@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
     "application/xml", "application/jsonx", "json"],
)  # fmt: skip
def test_a_body_of_another_media_type_is_415(
    world: tuple[Api, Account, dict[str, Any]], content_type: str | None
) -> None:
    api, alice, task = world
    bodies = {
        "/v1/users": {"email": "new@example.com", "password": "long enough pass"},
        "/v1/auth/sessions": {"email": alice.email, "password": "long enough pass"},
        "/v1/api-keys": {"name": "k", "scopes": ["tasks:read"]},
        "/v1/tasks": {"title": "new"},
        f"/v1/tasks/{task['id']}": {"title": "changed"},
    }
    for method, url, auth in targets(task["id"]):
        content = json.dumps(bodies[url]).encode()
        response = send(api, method, url, content, content_type, alice.token if auth else None)
        problem(response, 415)


def test_merge_patch_media_type_is_only_for_patch(
    world: tuple[Api, Account, dict[str, Any]],
) -> None:
    api, alice, _ = world
    response = send(
        api, "POST", "/v1/tasks", b'{"title": "x"}', "application/merge-patch+json", alice.token
    )
    problem(response, 415)


def test_json_with_a_charset_parameter_is_accepted(api: Api, alice: Account) -> None:
    response = send(
        api, "POST", "/v1/tasks", b'{"title": "x"}', "application/json; charset=utf-8", alice.token
    )
    assert response.status_code == 201


@pytest.mark.parametrize("size", [MIB + 1, 10 * MIB])
def test_a_body_over_one_mebibyte_is_413(
    world: tuple[Api, Account, dict[str, Any]], size: int
) -> None:
    api, alice, task = world
    padding = "x" * size
    for method, url, auth in targets(task["id"]):
        content = json.dumps({"title": padding}).encode()
        response = send(api, method, url, content, token=alice.token if auth else None)
        problem(response, 413)


def test_a_body_just_under_one_mebibyte_is_not_413(api: Api, alice: Account) -> None:
    content = json.dumps({"title": "x", "description": "d" * (MIB - 100)}).encode()
    assert len(content) < MIB
    response = send(api, "POST", "/v1/tasks", content, token=alice.token)
    problem(response, 422)  # too long a description, but read and judged


@pytest.mark.parametrize(
    ("url", "body", "field"),
    [
        ("/v1/users", {"password": "long enough pass"}, "email"),
        ("/v1/users", {"email": "new@example.com"}, "password"),
        ("/v1/users", {"email": 42, "password": "long enough pass"}, "email"),
        ("/v1/users", {"email": "new@example.com", "password": ["x"]}, "password"),
        ("/v1/users", {"email": "new@example.com", "password": "long enough", "name": 1}, "name"),
        ("/v1/users", {"email": "new@example.com", "password": "long enough", "admin": True},
         "admin"),
        ("/v1/users", {"email": "new@example.com", "password": "long enough", "id": "x"}, "id"),
        ("/v1/users", {"email": "new@example.com", "password": "long enough", "name": ""},
         "name"),
        ("/v1/users", {"email": "new@example.com", "password": "long enough",
                       "name": "n" * 201}, "name"),
        ("/v1/users", {"email": "not-an-email", "password": "long enough pass"}, "email"),
        ("/v1/users", {"email": "a@b@example.com", "password": "long enough pass"}, "email"),
        ("/v1/users", {"email": "x" * 250 + "@example.com", "password": "long enough"}, "email"),
        ("/v1/auth/sessions", {"email": "a@example.com"}, "password"),
        ("/v1/auth/sessions", {"password": "long enough pass"}, "email"),
        ("/v1/auth/sessions", {"email": "a@example.com", "password": 12345678}, "password"),
        ("/v1/auth/sessions", {"email": "a@example.com", "password": "x", "otp": 1}, "otp"),
        ("/v1/api-keys", {"name": "k", "scopes": "tasks:read"}, "scopes"),
        ("/v1/api-keys", {"name": "k", "scopes": [1]}, "scopes"),
        ("/v1/api-keys", {"name": ["k"], "scopes": ["tasks:read"]}, "name"),
        ("/v1/api-keys", {"name": "k", "scopes": ["tasks:read"], "expires_at": 5}, "expires_at"),
        ("/v1/api-keys", {"name": "k", "scopes": ["tasks:read"], "expires_at": "soon"},
         "expires_at"),
        ("/v1/api-keys", {"name": "k", "scopes": ["tasks:read"], "key": "thk_mine"}, "key"),
        ("/v1/tasks", {"title": {"nested": 1}}, "title"),
        ("/v1/tasks", {"title": "x", "labels": [["a"]]}, "labels"),
        ("/v1/tasks", {"title": "x", "description": 3}, "description"),
        ("/v1/tasks", {"title": "x", "due_at": 1700000000}, "due_at"),
        ("/v1/tasks", {"title": "x", "priority": 10**30}, "priority"),
        ("/v1/tasks", {"title": "x", "owner_id": "someone"}, "owner_id"),
    ],
)  # fmt: skip
def test_a_body_that_does_not_fit_is_422_naming_the_field(
    world: tuple[Api, Account, dict[str, Any]], url: str, body: dict[str, Any], field: str
) -> None:
    api, alice, _ = world
    token = alice.token if url in ("/v1/api-keys", "/v1/tasks") else None
    response = send(api, "POST", url, json.dumps(body).encode(), token=token)
    errors = problem(response, 422)["errors"]
    assert field in [e["field"].split("[")[0].split(".")[0] for e in errors], errors
    for error in errors:
        assert error["message"]


@pytest.mark.parametrize(
    "body", [[], ["title"], "title", 42, None, True, {"": "x"}, {"title": "x", "labels": {}}]
)
def test_json_that_is_not_the_expected_object_is_422(
    world: tuple[Api, Account, dict[str, Any]], body: Any
) -> None:
    api, alice, task = world
    for method, url, auth in targets(task["id"]):
        content = json.dumps(body).encode()
        response = send(api, method, url, content, token=alice.token if auth else None)
        assert problem(response, 422)["errors"]


@pytest.mark.parametrize(
    "email",
    [
        "ad\u200ba@example.com",  # zero-width space
        "ada@exa\u200dmple.com",  # zero-width joiner
        "\u202eada@example.com",  # right-to-left override
        "ada@example.com\u202c",  # pop directional formatting
        "ada\uff20example.com",  # full-width commercial at
        "ada@example\u3002com",  # ideographic full stop
        "ada\u00a0@example.com",  # no-break space
        "ada@example.com\n",  # surrounding whitespace: trimmed, so accepted (see below)
        "ada\n@example.com",
        "ada\x00@example.com",
        "\ufeffada@example.com",  # byte-order mark
        "ad\u2028a@example.com",  # line separator
    ],
)
def test_unicode_tricks_in_an_email_are_422(api: Api, email: str) -> None:
    response = api.register(email)
    assert response.status_code < 500
    if email == "ada@example.com\n":
        # Surrounding whitespace is trimmed: a plain address, accepted as such.
        assert response.status_code == 201
        assert response.json()["email"] == "ada@example.com"
        return
    body = problem(response, 422)
    assert [e["field"] for e in body["errors"]] == ["email"]
    assert api.rows("users") == {}


def test_lookalike_emails_cannot_take_over_an_account(api: Api) -> None:
    assert api.register("ada@example.com").status_code == 201
    for trick in ("ad\u200ba@example.com", "ada\uff20example.com", "\u202eada@example.com"):
        assert api.login(trick).status_code == 401
        assert api.register(trick).status_code == 422
    assert len(api.rows("users")) == 1


def test_a_nul_in_a_password_or_name_is_never_a_500(api: Api) -> None:
    for body in (
        {"email": "nul1@example.com", "password": "pass\x00word!"},
        {"email": "nul2@example.com", "password": "password!", "name": "a\x00b"},
    ):
        response = api.client.post("/v1/users", json=body)
        assert response.status_code in (201, 422), response.text


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("due_at", "0001-01-01T00:00:00+01:00"),
        ("due_at", "9999-12-31T23:59:59-01:00"),
    ],
)
def test_a_time_that_overflows_in_utc_is_422_not_500(
    api: Api, alice: Account, field: str, value: str
) -> None:
    response = api.client.post("/v1/tasks", json={"title": "x", field: value}, headers=alice.auth)
    assert problem(response, 422)["errors"][0]["field"] == field


@pytest.mark.parametrize("param", ["due_before", "due_after"])
def test_a_list_bound_that_overflows_in_utc_is_4xx_not_500(
    api: Api, alice: Account, param: str
) -> None:
    response = api.client.get(
        "/v1/tasks", params={param: "0001-01-01T00:00:00+01:00"}, headers=alice.auth
    )
    assert response.status_code in (400, 422), response.text


def test_a_patch_that_does_not_fit_changes_nothing(
    world: tuple[Api, Account, dict[str, Any]],
) -> None:
    api, alice, task = world
    url = f"/v1/tasks/{task['id']}"
    for body in (
        b'{"title": "ok", "priority": "high"}',  # one bad field spoils the whole patch
        b'{"description": null, "status": null}',
        b'{"title": "ok", "surprise": 1}',
    ):
        problem(send(api, "PATCH", url, body, token=alice.token), 422)
    assert api.client.get(url, headers=alice.auth).json() == task


def test_unknown_routes_and_methods_are_problem_json(api: Api, alice: Account) -> None:
    for method, url, status in (
        ("GET", "/v1/nowhere", 404),
        ("PUT", "/v1/tasks", 405),
        ("DELETE", "/v1/tasks", 405),
        ("POST", "/v1/users/me", 405),
    ):
        response = api.client.request(method, url, headers=alice.auth)
        problem(response, status)
        assert response.headers.get("x-request-id")
        if status == 405:  # the methods the route has, in one stable order
            allowed = response.headers["allow"].split(", ")
            assert allowed == sorted(allowed)
            assert method not in allowed


def test_no_error_shows_a_trace_or_sql(api: Api, alice: Account) -> None:
    responses = [
        send(api, "POST", "/v1/tasks", b"{", token=alice.token),
        send(api, "POST", "/v1/tasks", b'{"title": 1}', token=alice.token),
        api.client.get("/v1/tasks", params={"cursor": "x" * 50}, headers=alice.auth),
        api.client.get("/v1/tasks/' OR 1=1 --", headers=alice.auth),
    ]
    for response in responses:
        assert response.status_code < 500
        for marker in ("Traceback", 'File "', "SELECT", "sqlalchemy", "msgspec."):
            assert marker not in response.text


@pytest.mark.parametrize("depth", [1_500, 100_000])
@pytest.mark.parametrize("shape", ["bare", "in-a-known-field", "in-an-unknown-field"])
def test_json_nested_too_deeply_is_400_without_a_traceback(
    world: tuple[Api, Account, dict[str, Any]],
    stderr_logs: Any,
    depth: int,
    shape: str,
) -> None:
    api, alice, task = world
    nested = b"[" * depth + b"]" * depth
    for method, url, auth in targets(task["id"]):
        field = FIRST_FIELD.get(url, "title").encode()
        content = {
            "bare": nested,
            "in-a-known-field": b'{"' + field + b'": ' + nested + b"}",
            "in-an-unknown-field": b'{"zzz": ' + nested + b', "' + field + b'": "x"}',
        }[shape]
        response = send(api, method, url, content, token=alice.token if auth else None)
        body = problem(response, 400)
        assert "nested" in body["detail"]
    logs = stderr_logs()
    assert "Traceback" not in logs
    assert "RecursionError" not in logs
