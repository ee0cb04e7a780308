"""One JSON line per request: the access line, with the request's context and the domain events
the request published (no second line for them)."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable
from typing import Any

import structlog

from adapters.http.middleware import new_request_id
from tests.unit.http.conftest import ApiFactory

ACCESS_KEYS = {
    "event",
    "level",
    "timestamp",
    "request_id",
    "method",
    "route",
    "path",
    "status",
    "duration_ms",
    "client",
    "principal",
    "user_id",
    "actor",
}


def lines_of(text: str, request_id: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("request_id") == request_id]


def test_a_create_writes_one_line_that_carries_its_domain_event(
    make_api: ApiFactory, stderr_logs: Callable[[], str]
) -> None:
    api = make_api(LOG_FORMAT="json")
    structlog.configure(cache_logger_on_first_use=False)  # see stderr_logs
    alice = api.account()
    response = api.client.post("/v1/tasks", json={"title": "t"}, headers=alice.auth)
    assert response.status_code == 201
    task = response.json()

    (line,) = lines_of(stderr_logs(), response.headers["x-request-id"])
    assert set(line) == ACCESS_KEYS | {"domain_events"}
    assert (line["event"], line["level"], line["status"]) == ("request", "info", 201)
    assert (line["route"], line["path"], line["method"]) == ("/v1/tasks", "/v1/tasks", "POST")
    assert line["user_id"] == alice.id
    assert line["principal"].startswith("session:")
    assert line["timestamp"].endswith("Z")
    (event,) = line["domain_events"]
    assert event == {
        "name": "task.created",
        "task_id": task["id"],
        "owner_id": alice.id,
        "version": 1,
        "occurred_at": event["occurred_at"],
    }


def test_a_read_writes_one_line_without_events(
    make_api: ApiFactory, stderr_logs: Callable[[], str]
) -> None:
    api = make_api(LOG_FORMAT="json")
    structlog.configure(cache_logger_on_first_use=False)  # see stderr_logs
    alice = api.account()
    task = api.create_task(alice.token)
    response = api.client.get(
        f"/v1/tasks/{task['id']}", headers={**alice.auth, "X-Request-ID": "read-1"}
    )
    assert response.status_code == 200

    (line,) = lines_of(stderr_logs(), "read-1")
    assert set(line) == ACCESS_KEYS
    assert line["route"] == "/v1/tasks/{task_id}"
    assert line["path"] == f"/v1/tasks/{task['id']}"


def test_an_anonymous_failure_has_the_request_id_and_no_principal(
    make_api: ApiFactory, stderr_logs: Callable[[], str]
) -> None:
    api = make_api(LOG_FORMAT="json")
    structlog.configure(cache_logger_on_first_use=False)  # see stderr_logs
    response = api.client.get("/v1/tasks", headers={"X-Request-ID": "anon-1"})
    assert response.status_code == 401

    lines = lines_of(stderr_logs(), "anon-1")
    access = [line for line in lines if line["event"] == "request"]
    assert len(access) == 1
    assert access[0]["principal"] is None
    assert access[0]["status"] == 401
    # The guard's own line (why it refused) carries the same request id.
    assert [line["event"] for line in lines if line["event"] != "request"] == ["auth denied"]


def test_a_new_request_id_is_a_random_uuid4_in_hex() -> None:
    ids = {new_request_id() for _ in range(200)}
    assert len(ids) == 200
    for value in ids:
        parsed = uuid.UUID(value)
        assert parsed.hex == value
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122


def test_request_ids_stay_distinct_past_a_refill_and_in_a_forked_child() -> None:
    ids = [new_request_id() for _ in range(1000)]  # several 4 KiB refills
    assert len(set(ids)) == len(ids)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next id must not be the parent's next one
        os.write(write, new_request_id().encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(read, 64).decode()
    os.close(read)
    os.close(write)
    assert child != new_request_id()
    assert uuid.UUID(child).version == 4
