"""Schemathesis against `/openapi.json` of the in-process app: for every operation, generated
requests (valid and invalid) never get a 5xx, and every answer matches the documented status
codes and response schemas. Bounded: a few dozen examples per operation and mode."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from litestar.testing import TestClient
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)

from app.factory import create_app
from tests.unit.http.conftest import BASE_ENV, PASSWORD, bearer, fast_container

MAX_EXAMPLES = 25


@dataclass
class Target:
    schema: Any
    auth: dict[str, str]
    task_ids: list[str]
    doomed_task_ids: list[str]  # for DELETE, so that the others stay
    key_ids: list[str]


@pytest.fixture(scope="module")
def target() -> Target:
    """The app on memory://, a user with a session token, a few tasks and keys."""
    container = fast_container(dict(BASE_ENV))
    app = create_app(container.settings(), container)
    with TestClient(app) as client:
        email = "fuzz@example.com"
        assert client.post("/v1/users", json={"email": email, "password": PASSWORD}).is_success
        login = client.post("/v1/auth/sessions", json={"email": email, "password": PASSWORD})
        auth = bearer(login.json()["token"])
        task_ids = [
            client.post("/v1/tasks", json={"title": f"t{i}"}, headers=auth).json()["id"]
            for i in range(10)
        ]
        key_ids = [
            client.post(
                "/v1/api-keys", json={"name": f"k{i}", "scopes": ["tasks:read"]}, headers=auth
            ).json()["id"]
            for i in range(5)
        ]
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    return Target(schema, auth, task_ids[:5], task_ids[5:], key_ids)


POSITIVE, NEGATIVE = GenerationMode.POSITIVE, GenerationMode.NEGATIVE
# (method, path, takes input): negative data needs a parameter or a body to spoil.
OPERATIONS = [
    ("GET", "/health", False),
    ("GET", "/health/ready", False),
    ("GET", "/metrics", False),
    ("POST", "/v1/users", True),
    ("POST", "/v1/auth/sessions", True),
    ("GET", "/v1/users/me", False),
    ("GET", "/v1/api-keys", False),
    ("POST", "/v1/api-keys", True),
    ("DELETE", "/v1/api-keys/{key_id}", True),
    ("GET", "/v1/tasks", True),
    ("POST", "/v1/tasks", True),
    ("GET", "/v1/tasks/{task_id}", True),
    ("PATCH", "/v1/tasks/{task_id}", True),
    ("DELETE", "/v1/tasks/{task_id}", True),
    ("GET", "/v1/trash", True),
    ("POST", "/v1/trash/{task_id}/restore", True),
    ("DELETE", "/v1/trash/{task_id}", True),
    # DELETE /v1/auth/sessions/current is left out: it would end the session every other
    # operation here runs with (test_identity_api.py covers it).
]
CASES = [
    pytest.param(method, path, mode, id=f"{method} {path} {mode.value}")
    for method, path, takes_input in OPERATIONS
    for mode in ((POSITIVE, NEGATIVE) if takes_input else (POSITIVE,))
]


@pytest.mark.parametrize(("method", "path", "mode"), CASES)
def test_operation_conforms_to_its_schema(
    target: Target, method: str, path: str, mode: GenerationMode
) -> None:
    """No 5xx, only documented status codes, and bodies that match the documented schema."""
    fuzz(
        target,
        method,
        path,
        mode,
        [not_a_server_error, status_code_conformance, response_schema_conformance],
    )


def fuzz(target: Target, method: str, path: str, mode: GenerationMode, checks: list[Any]) -> None:
    operation = target.schema[path][method]
    strategies = [operation.as_strategy(generation_mode=mode)]
    # Known ids too, so that the 2xx answers of the {id} operations are exercised.
    if "{task_id}" in path:
        strategies += [
            operation.as_strategy(generation_mode=mode, path_parameters={"task_id": task_id})
            for task_id in (target.doomed_task_ids if method == "DELETE" else target.task_ids)
        ]
    if "{key_id}" in path:
        strategies += [
            operation.as_strategy(generation_mode=mode, path_parameters={"key_id": key_id})
            for key_id in target.key_ids
        ]

    @given(case=st.one_of(strategies))
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def check(case: Any) -> None:
        case.call_and_validate(headers=target.auth, checks=checks)

    check()


def _responses(target: Target, method: str, path: str) -> dict[str, Any]:
    responses: dict[str, Any] = target.schema.raw_schema["paths"][path][method.lower()]["responses"]
    return responses


def test_the_document_lists_304_for_a_conditional_get(target: Target) -> None:
    assert "304" in _responses(target, "GET", "/v1/tasks/{task_id}")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/tasks/{task_id}"),
        ("DELETE", "/v1/tasks/{task_id}"),
        ("DELETE", "/v1/api-keys/{key_id}"),
    ],
)
def test_every_documented_error_is_problem_json(target: Target, method: str, path: str) -> None:
    for status, response in _responses(target, method, path).items():
        if status.startswith(("4", "5")):
            assert set(response.get("content", {})) == {"application/problem+json"}, status


def test_documented_errors_elsewhere_are_problem_json(target: Target) -> None:
    for method, path in (("POST", "/v1/tasks"), ("GET", "/v1/tasks"), ("POST", "/v1/users")):
        for status, response in _responses(target, method, path).items():
            if status.startswith(("4", "5")):
                assert set(response.get("content", {})) == {"application/problem+json"}, status
