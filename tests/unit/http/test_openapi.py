"""The served OpenAPI text says what the service does: readable operation ids, the headers of
every answer, every status an operation can send, typed query parameters, public operations
marked public."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.http.conftest import Api

OPERATION_IDS = {
    ("get", "/health"): "getHealth",
    ("get", "/health/ready"): "getReadiness",
    ("get", "/metrics"): "getMetrics",
    ("post", "/v1/users"): "createUser",
    ("get", "/v1/users/me"): "getCurrentUser",
    ("post", "/v1/auth/sessions"): "createSession",
    ("delete", "/v1/auth/sessions/current"): "deleteCurrentSession",
    ("post", "/v1/api-keys"): "createApiKey",
    ("get", "/v1/api-keys"): "listApiKeys",
    ("delete", "/v1/api-keys/{key_id}"): "deleteApiKey",
    ("post", "/v1/tasks"): "createTask",
    ("get", "/v1/tasks"): "listTasks",
    ("get", "/v1/tasks/{task_id}"): "getTask",
    ("patch", "/v1/tasks/{task_id}"): "updateTask",
    ("delete", "/v1/tasks/{task_id}"): "deleteTask",
    ("post", "/v1/tasks/batch"): "runTaskBatch",
    ("get", "/v1/trash"): "listTrash",
    ("post", "/v1/trash/{task_id}/restore"): "restoreTask",
    ("delete", "/v1/trash/{task_id}"): "deleteTrashedTask",
    ("post", "/v1/projects"): "createProject",
    ("get", "/v1/projects"): "listProjects",
    ("get", "/v1/projects/{project_id}"): "getProject",
    ("patch", "/v1/projects/{project_id}"): "updateProject",
    ("delete", "/v1/projects/{project_id}"): "deleteProject",
    ("get", "/v1/projects/{project_id}/members"): "listMembers",
    ("post", "/v1/projects/{project_id}/members"): "addMember",
    ("patch", "/v1/projects/{project_id}/members/{user_id}"): "updateMember",
    ("delete", "/v1/projects/{project_id}/members/{user_id}"): "removeMember",
    ("post", "/v1/tasks/{task_id}/comments"): "createComment",
    ("get", "/v1/tasks/{task_id}/comments"): "listComments",
    ("delete", "/v1/tasks/{task_id}/comments/{comment_id}"): "deleteComment",
    ("post", "/v1/webhooks"): "createWebhook",
    ("get", "/v1/webhooks"): "listWebhooks",
    ("get", "/v1/webhooks/{webhook_id}"): "getWebhook",
    ("patch", "/v1/webhooks/{webhook_id}"): "updateWebhook",
    ("delete", "/v1/webhooks/{webhook_id}"): "deleteWebhook",
    ("post", "/v1/webhooks/{webhook_id}/rotate-secret"): "rotateWebhookSecret",
    ("post", "/v1/webhooks/{webhook_id}/ping"): "pingWebhook",
    ("get", "/v1/webhooks/{webhook_id}/deliveries"): "listWebhookDeliveries",
    ("get", "/v1/webhooks/{webhook_id}/deliveries/{delivery_id}"): "getWebhookDelivery",
    ("post", "/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver"): (
        "redeliverWebhookDelivery"
    ),
    ("get", "/v1/tasks/{task_id}/activity"): "listTaskActivity",
    ("get", "/v1/projects/{project_id}/activity"): "listProjectActivity",
    ("get", "/v1/changes"): "listChanges",
    ("get", "/v1/changes/stream"): "streamChanges",
}
PUBLIC = {"getHealth", "getReadiness", "getMetrics", "createUser", "createSession"}


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    from litestar.testing import TestClient

    from app.factory import create_app
    from tests.unit.http.conftest import BASE_ENV, fast_container

    container = fast_container(dict(BASE_ENV))
    with TestClient(create_app(container.settings(), container)) as client:
        document: dict[str, Any] = client.get("/openapi.json").json()
    return document


def operations(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        op["operationId"]: op
        for item in spec["paths"].values()
        for verb, op in item.items()
        if verb in {"get", "post", "patch", "put", "delete"}
    }


def resolve(spec: dict[str, Any], obj: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in obj:
        node: Any = spec
        for part in obj["$ref"].removeprefix("#/").split("/"):
            node = node[part]
        obj = node
    return obj


def headers_of(spec: dict[str, Any], op: dict[str, Any], status: int) -> dict[str, Any]:
    response = op["responses"][str(status)]
    return {name: resolve(spec, h) for name, h in response.get("headers", {}).items()}


def test_every_operation_has_a_stable_readable_id(spec: dict[str, Any]) -> None:
    found = {
        (verb, path): op["operationId"]
        for path, item in spec["paths"].items()
        for verb, op in item.items()
    }
    assert found == OPERATION_IDS


def test_public_operations_say_so_and_the_others_need_a_bearer(spec: dict[str, Any]) -> None:
    for op_id, op in operations(spec).items():
        if op_id in PUBLIC:
            assert op["security"] == [], op_id
        else:
            assert op["security"] == [{"bearer": []}], op_id


def test_every_answer_names_x_request_id(spec: dict[str, Any]) -> None:
    for op_id, op in operations(spec).items():
        for status in op["responses"]:
            assert "X-Request-ID" in headers_of(spec, op, int(status)), (op_id, status)


def test_every_v1_answer_names_the_rate_limit_headers(spec: dict[str, Any]) -> None:
    for path, item in spec["paths"].items():
        for op in item.values():
            for status in op["responses"]:
                names = set(headers_of(spec, op, int(status)))
                limited = {"RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"} <= names
                assert limited is path.startswith("/v1/"), (op["operationId"], status)


@pytest.mark.parametrize(
    ("op_id", "status", "names"),
    [
        ("createTask", 201, {"ETag", "Location", "Idempotent-Replayed"}),
        ("createTask", 303, {"Location", "Idempotent-Replayed"}),
        ("listTasks", 200, {"Link"}),
        ("getTask", 200, {"ETag"}),
        ("getTask", 304, {"ETag"}),
        ("updateTask", 200, {"ETag"}),
        ("getCurrentUser", 401, {"WWW-Authenticate"}),
        ("listTasks", 429, {"Retry-After"}),
        ("createUser", 503, {"Retry-After"}),
        ("createProject", 201, {"ETag", "Location", "Idempotent-Replayed"}),
        ("createProject", 303, {"Location", "Idempotent-Replayed"}),
        ("getProject", 200, {"ETag"}),
        ("getProject", 304, {"ETag"}),
        ("updateProject", 200, {"ETag"}),
        ("addMember", 201, {"Idempotent-Replayed"}),
        ("createComment", 201, {"Idempotent-Replayed"}),
        ("listComments", 200, {"Link"}),
    ],
)
def test_the_headers_of_an_answer_are_declared(
    spec: dict[str, Any], op_id: str, status: int, names: set[str]
) -> None:
    declared = headers_of(spec, operations(spec)[op_id], status)
    assert names <= set(declared)
    for name in names:
        assert declared[name]["schema"]["type"] in {"string", "integer"}


def test_the_service_token_header_is_a_documented_parameter(spec: dict[str, Any]) -> None:
    for op_id, op in operations(spec).items():
        names = {resolve(spec, p)["name"] for p in op.get("parameters", [])}
        assert ("X-Acting-User" in names) is (op_id not in PUBLIC), op_id


@pytest.mark.parametrize(
    ("op_id", "statuses"),
    [
        ("getCurrentUser", {200, 401, 429, 503}),
        ("createUser", {201, 400, 403, 409, 413, 415, 422, 429, 503}),
        ("createSession", {201, 400, 401, 413, 415, 422, 429, 503}),
        ("deleteCurrentSession", {204, 401, 403, 429, 503}),
        ("createApiKey", {201, 400, 401, 403, 409, 413, 415, 422, 429, 503}),
        ("listApiKeys", {200, 400, 401, 403, 422, 429, 503}),
        ("deleteApiKey", {204, 401, 403, 404, 429, 503}),
        ("createTask", {201, 303, 400, 401, 403, 404, 409, 413, 415, 422, 429, 503}),
        ("listTasks", {200, 400, 401, 403, 422, 429, 503}),
        ("getTask", {200, 304, 401, 403, 404, 429, 503}),
        ("updateTask", {200, 400, 401, 403, 404, 409, 412, 413, 415, 422, 429, 503}),
        ("deleteTask", {204, 401, 403, 404, 409, 412, 429, 503}),
        ("runTaskBatch", {200, 400, 401, 403, 404, 409, 412, 413, 415, 422, 429, 503}),
        ("listTrash", {200, 400, 401, 403, 422, 429, 503}),
        ("restoreTask", {200, 401, 403, 404, 409, 429, 503}),
        ("deleteTrashedTask", {204, 401, 403, 404, 409, 429, 503}),
        ("createProject", {201, 303, 400, 401, 403, 409, 413, 415, 422, 429, 503}),
        ("listProjects", {200, 401, 403, 429, 503}),
        ("getProject", {200, 304, 401, 403, 404, 429, 503}),
        ("updateProject", {200, 400, 401, 403, 404, 409, 412, 413, 415, 422, 429, 503}),
        ("deleteProject", {204, 401, 403, 404, 409, 412, 429, 503}),
        ("listMembers", {200, 401, 403, 404, 429, 503}),
        ("addMember", {201, 400, 401, 403, 404, 409, 413, 415, 422, 429, 503}),
        ("updateMember", {200, 400, 401, 403, 404, 409, 413, 415, 422, 429, 503}),
        ("removeMember", {204, 401, 403, 404, 409, 429, 503}),
        ("createComment", {201, 400, 401, 403, 404, 409, 413, 415, 422, 429, 503}),
        ("listComments", {200, 400, 401, 403, 404, 422, 429, 503}),
        ("deleteComment", {204, 401, 403, 404, 429, 503}),
        ("listTaskActivity", {200, 400, 401, 403, 404, 422, 429, 503}),
        ("listProjectActivity", {200, 400, 401, 403, 404, 422, 429, 503}),
        ("listChanges", {200, 401, 403, 410, 422, 429, 503}),
        ("streamChanges", {200, 401, 403, 410, 422, 429, 503}),
        ("getReadiness", {200, 503}),
        ("getHealth", {200}),
        ("getMetrics", {200}),
    ],
)
def test_each_operation_documents_the_statuses_it_can_send(
    spec: dict[str, Any], op_id: str, statuses: set[int]
) -> None:
    assert {int(s) for s in operations(spec)[op_id]["responses"]} == statuses


def test_error_answers_are_problem_json(spec: dict[str, Any]) -> None:
    for op_id, op in operations(spec).items():
        for status, response in op["responses"].items():
            if status.startswith(("4", "5")) and op_id != "getReadiness":
                assert set(response["content"]) == {"application/problem+json"}, (op_id, status)


def test_list_query_parameters_are_typed(spec: dict[str, Any]) -> None:
    listed = [resolve(spec, p) for p in operations(spec)["listTasks"]["parameters"]]
    params = {p["name"]: p["schema"] for p in listed}
    assert params["limit"] == {"type": "integer", "minimum": 1, "maximum": 200, "default": 50}
    assert params["priority"]["type"] == "integer"
    assert (params["priority"]["minimum"], params["priority"]["maximum"]) == (1, 4)
    assert set(params["status"]["enum"]) == {"todo", "in_progress", "done"}
    sort = resolve(spec, params["sort"])
    assert set(sort["enum"]) == {
        f"{sign}{key}"
        for sign in ("", "-")
        for key in ("created_at", "due_at", "priority", "updated_at")
    }
    assert params["sort"]["default"] == "-created_at"
    for name in ("due_before", "due_after"):
        assert params[name] == {**params[name], "type": "string", "format": "date-time"}
    assert params["label"]["type"] == "array"
    assert resolve(spec, params["project_id"]) == {
        **params["project_id"],
        "type": "string",
        "format": "uuid",
    }
    assert params["assignee_id"]["pattern"].startswith("^(me|none|")
    assert params["parent_id"]["pattern"].startswith("^(none|")


def test_the_comment_list_parameters_are_typed(spec: dict[str, Any]) -> None:
    listed = [resolve(spec, p) for p in operations(spec)["listComments"]["parameters"]]
    params = {p["name"]: p for p in listed}
    assert params["limit"]["schema"] == {
        "type": "integer",
        "minimum": 1,
        "maximum": 200,
        "default": 50,
    }
    assert params["task_id"]["in"] == "path"


def test_conditional_and_idempotency_headers_are_parameters(spec: dict[str, Any]) -> None:
    ops = operations(spec)
    for op_id, header in (
        ("getProject", "If-None-Match"),
        ("updateProject", "If-Match"),
        ("deleteProject", "If-Match"),
        ("createProject", "Idempotency-Key"),
        ("addMember", "Idempotency-Key"),
        ("createComment", "Idempotency-Key"),
    ):
        names = {resolve(spec, p)["name"] for p in ops[op_id]["parameters"]}
        assert header in names, (op_id, header)


def test_scopes_are_the_one_list_of_the_domain(spec: dict[str, Any]) -> None:
    from domain.auth import Scope

    scope = spec["components"]["schemas"]["Scope"]
    assert set(scope["enum"]) == {s.value for s in Scope}


def test_times_in_request_bodies_are_date_times(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    for name, field in (
        ("TaskCreate", "due_at"),
        ("TaskPatch", "due_at"),
        ("ApiKeyCreate", "expires_at"),
    ):
        choices = schemas[name]["properties"][field]["anyOf"]
        assert {"type": "string", "format": "date-time"} in choices, name


def test_the_swagger_page_embeds_the_served_document(api: Api) -> None:
    """/docs renders the same document as /openapi.json (request bodies included)."""
    page = api.client.get("/docs").text
    assert '"operationId":"createTask"' in page
    assert '"requestBody"' in page


def test_the_docs_page_needs_no_outside_host(api: Api) -> None:
    """/docs renders on a machine without internet: the page names no other host, and every
    script, style sheet and icon it references is served by the service itself."""
    import re

    page = api.client.get("/docs")
    assert page.status_code == 200
    assert not re.search(r"(https?:)?//[A-Za-z0-9.-]+\.[A-Za-z]", _markup(page.text))
    referenced = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page.text)
    assert len(referenced) == 4  # the script, the preset, the style sheet, the icon
    kinds = {".js": "javascript", ".css": "text/css", ".png": "image/png"}
    for url in referenced:
        assert url.startswith("/docs/assets/"), url
        asset = api.client.get(url)
        assert asset.status_code == 200, url
        assert kinds[url[url.rfind(".") :]] in asset.headers["content-type"], url
        assert len(asset.content) > 500, url


def _markup(page: str) -> str:
    """The page without the embedded OpenAPI document (whose text may quote URLs)."""
    start = page.find("spec: ")
    end = page.find("dom_id:")
    return page[:start] + page[end:] if start >= 0 else page
