"""Each status the OpenAPI text documents for an operation is one the service can send: for every
(operation, status) pair in the served document there is a recipe here that makes the service
answer it, and there is no recipe for a pair the document leaves out. (The other direction,
every status the HTTP tests see is documented, is checked after each test by the
`answers_are_documented` fixture.)"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from adapters.http.services import SERVICES
from tests.unit.http.conftest import (
    PASSWORD,
    Account,
    Api,
    ApiFactory,
    bearer,
    fresh_email,
)
from tests.unit.http.projects_world import ALL_SCOPES, add_member, make_inbox, place_task

DEAD_DATABASE = "postgresql+asyncpg://x@127.0.0.1:1/x"
WEBHOOK_BODY = {"url": "https://hooks.example.com/h", "events": ["task.*"]}
JSON = {"Content-Type": "application/json"}


@dataclass
class World:
    """An app, its owner account and helpers that make the resources an operation needs."""

    api: Api
    owner: Account
    dead: bool = False
    # Set, the one task / key every request uses (made before a rate limit runs out).
    fixed: dict[str, str] = field(default_factory=dict)

    @property
    def client(self) -> Any:
        return self.api.client

    def task(self) -> str:
        if self.dead:
            return str(uuid.uuid4())
        if "task" in self.fixed:
            return self.fixed["task"]
        return str(self.api.create_task(self.owner.token)["id"])

    def trashed(self) -> str:
        """A task of the owner's, in the trash."""
        if self.dead:
            return str(uuid.uuid4())
        if "trashed" in self.fixed:
            return self.fixed["trashed"]
        task_id = str(self.api.create_task(self.owner.token)["id"])
        self.client.delete(f"/v1/tasks/{task_id}", headers=self.owner.auth)
        return task_id

    def key_id(self) -> str:
        if self.dead:
            return str(uuid.uuid4())
        if "key" in self.fixed:
            return self.fixed["key"]
        issued = self.api.issue_key(self.owner.token, ["tasks:read"])
        return str(issued.json()["id"])

    def project(self) -> str:
        if self.dead:
            return str(uuid.uuid4())
        if "project" in self.fixed:
            return self.fixed["project"]
        made = self.client.post("/v1/projects", json={"name": "p"}, headers=self.owner.auth)
        return str(made.json()["id"])

    def webhook(self) -> str:
        if self.dead:
            return str(uuid.uuid4())
        if "webhook" in self.fixed:
            return self.fixed["webhook"]
        made = self.client.post("/v1/webhooks", json=WEBHOOK_BODY, headers=self.owner.auth)
        return str(made.json()["id"])

    def delivery(self, webhook_id: str) -> str:
        if self.dead:
            return str(uuid.uuid4())
        if "delivery" in self.fixed:
            return self.fixed["delivery"]
        made = self.client.post(f"/v1/webhooks/{webhook_id}/ping", headers=self.owner.auth)
        return str(made.json()["id"])

    def placed_task(self) -> str:
        """A task in one of the owner's projects."""
        if self.dead:
            return str(uuid.uuid4())
        if "placed" in self.fixed:
            return self.fixed["placed"]
        return place_task(self.api, self.owner.token, self.project())

    def comment(self, task_id: str) -> str:
        if self.dead:
            return str(uuid.uuid4())
        made = self.client.post(
            f"/v1/tasks/{task_id}/comments", json={"body": "c"}, headers=self.owner.auth
        )
        # No comment for an unknown task (or past a rate limit): an id that names none.
        return str(made.json()["id"]) if made.status_code == 201 else str(uuid.uuid4())

    def other_email(self) -> str:
        """The e-mail of a user who is not in the owner's projects yet."""
        if self.dead:
            return fresh_email()
        if "other" in self.fixed:
            return self.fixed["other"]
        return self.api.account().email

    def member(self, project_id: str) -> str:
        """The user id of a new viewer of the project."""
        if self.dead:
            return str(uuid.uuid4())
        if "member" in self.fixed:
            return self.fixed["member"]
        other = self.api.account()
        add_member(self.api, self.owner.token, project_id, other.email, "viewer")
        return other.id

    def key_without(self, op: str) -> dict[str, str]:
        """A credential that authenticates but lacks what `op` needs."""
        if op in PROJECT_SCOPES:
            lacking = PROJECT_SCOPES[op]
            return bearer(self.api.key(self.owner.token, [s for s in ALL_SCOPES if s != lacking]))
        scopes = {"task": ["keys:manage"], "key": ["tasks:read", "tasks:write"]}
        kind = "key" if "ApiKey" in op or op == "deleteCurrentSession" else "task"
        if op in {"getTask", "listTasks", "listTrash"}:
            scopes["task"] = ["tasks:write"]
        return bearer(self.api.key(self.owner.token, scopes[kind]))


# The scope each project, member and comment operation needs (the access policy checks it).
PROJECT_SCOPES = {
    "createProject": "projects:write",
    "listProjects": "projects:read",
    "getProject": "projects:read",
    "updateProject": "projects:write",
    "deleteProject": "projects:write",
    "listMembers": "projects:read",
    "addMember": "projects:write",
    "updateMember": "projects:write",
    "removeMember": "projects:write",
    "createComment": "tasks:write",
    "listComments": "tasks:read",
    "deleteComment": "tasks:write",
    **dict.fromkeys(
        (
            "createWebhook",
            "listWebhooks",
            "getWebhook",
            "updateWebhook",
            "deleteWebhook",
            "rotateWebhookSecret",
            "pingWebhook",
            "listWebhookDeliveries",
            "getWebhookDelivery",
            "redeliverWebhookDelivery",
        ),
        "webhooks:manage",
    ),
    "listTaskActivity": "tasks:read",
    "listProjectActivity": "tasks:read",
    "listChanges": "projects:read",
    "streamChanges": "tasks:read",
}


def _stream_changes(w: World, h: dict[str, str]) -> httpx.Response:
    # The test client reads a response to its end: a draining process ends a stream after the
    # events there are now.
    w.api.app.state[SERVICES].draining.begin()
    return w.client.get("/v1/changes/stream", headers=h)


def _remove_member(w: World, h: dict[str, str]) -> httpx.Response:
    project_id = w.project()
    return w.client.delete(f"/v1/projects/{project_id}/members/{w.member(project_id)}", headers=h)


def _webhook_delivery(w: World, h: dict[str, str], action: str = "") -> httpx.Response:
    hook = w.webhook()
    path = f"/v1/webhooks/{hook}/deliveries/{w.delivery(hook)}{action}"
    return w.client.request("POST" if action else "GET", path, headers=h)


def _delete_comment(w: World, h: dict[str, str]) -> httpx.Response:
    task_id = w.placed_task()
    return w.client.delete(f"/v1/tasks/{task_id}/comments/{w.comment(task_id)}", headers=h)


def world(make_api: ApiFactory, **env: str) -> World:
    api = make_api(**env)
    if env.get("DATABASE_URL") == DEAD_DATABASE:
        owner = Account(id=str(uuid.uuid4()), email=fresh_email(), token="ths_unknown")
        return World(api, owner, dead=True)
    return World(api, api.account())


Request = Callable[[World, dict[str, str]], httpx.Response]

# A well-formed request for each operation, sent with the given credential headers.
REQUESTS: dict[str, Request] = {
    "getHealth": lambda w, h: w.client.get("/health", headers=h),
    "getReadiness": lambda w, h: w.client.get("/health/ready", headers=h),
    "getMetrics": lambda w, h: w.client.get("/metrics", headers=h),
    "createUser": lambda w, h: w.client.post(
        "/v1/users", json={"email": fresh_email(), "password": PASSWORD}, headers=h
    ),
    "createSession": lambda w, h: w.client.post(
        "/v1/auth/sessions", json={"email": w.owner.email, "password": PASSWORD}, headers=h
    ),
    "getCurrentUser": lambda w, h: w.client.get("/v1/users/me", headers=h),
    "deleteCurrentSession": lambda w, h: w.client.delete("/v1/auth/sessions/current", headers=h),
    "createApiKey": lambda w, h: w.client.post(
        "/v1/api-keys", json={"name": "k", "scopes": ["tasks:read"]}, headers=h
    ),
    "listApiKeys": lambda w, h: w.client.get("/v1/api-keys", headers=h),
    "deleteApiKey": lambda w, h: w.client.delete(f"/v1/api-keys/{w.key_id()}", headers=h),
    "createTask": lambda w, h: w.client.post("/v1/tasks", json={"title": "t"}, headers=h),
    "listTasks": lambda w, h: w.client.get("/v1/tasks", headers=h),
    "getTask": lambda w, h: w.client.get(f"/v1/tasks/{w.task()}", headers=h),
    "updateTask": lambda w, h: w.client.patch(
        f"/v1/tasks/{w.task()}", json={"title": "u"}, headers=h
    ),
    "deleteTask": lambda w, h: w.client.delete(f"/v1/tasks/{w.task()}", headers=h),
    "runTaskBatch": lambda w, h: w.client.post(
        "/v1/tasks/batch",
        json={"operations": [{"op": "create", "data": {"title": "t"}}]},
        headers=h,
    ),
    "listTrash": lambda w, h: w.client.get("/v1/trash", headers=h),
    "restoreTask": lambda w, h: w.client.post(f"/v1/trash/{w.trashed()}/restore", headers=h),
    "deleteTrashedTask": lambda w, h: w.client.delete(f"/v1/trash/{w.trashed()}", headers=h),
    "createProject": lambda w, h: w.client.post("/v1/projects", json={"name": "p"}, headers=h),
    "listProjects": lambda w, h: w.client.get("/v1/projects", headers=h),
    "getProject": lambda w, h: w.client.get(f"/v1/projects/{w.project()}", headers=h),
    "updateProject": lambda w, h: w.client.patch(
        f"/v1/projects/{w.project()}", json={"name": "u"}, headers=h
    ),
    "deleteProject": lambda w, h: w.client.delete(f"/v1/projects/{w.project()}", headers=h),
    "listMembers": lambda w, h: w.client.get(f"/v1/projects/{w.project()}/members", headers=h),
    "addMember": lambda w, h: w.client.post(
        f"/v1/projects/{w.project()}/members",
        json={"email": w.other_email(), "role": "viewer"},
        headers=h,
    ),
    "updateMember": lambda w, h: w.client.patch(
        f"/v1/projects/{w.project()}/members/{w.owner.id}", json={"role": "owner"}, headers=h
    ),
    "removeMember": _remove_member,
    "createComment": lambda w, h: w.client.post(
        f"/v1/tasks/{w.placed_task()}/comments", json={"body": "c"}, headers=h
    ),
    "listComments": lambda w, h: w.client.get(f"/v1/tasks/{w.placed_task()}/comments", headers=h),
    "deleteComment": _delete_comment,
    "createWebhook": lambda w, h: w.client.post("/v1/webhooks", json=WEBHOOK_BODY, headers=h),
    "listWebhooks": lambda w, h: w.client.get("/v1/webhooks", headers=h),
    "getWebhook": lambda w, h: w.client.get(f"/v1/webhooks/{w.webhook()}", headers=h),
    "updateWebhook": lambda w, h: w.client.patch(
        f"/v1/webhooks/{w.webhook()}", json={"description": "u"}, headers=h
    ),
    "deleteWebhook": lambda w, h: w.client.delete(f"/v1/webhooks/{w.webhook()}", headers=h),
    "rotateWebhookSecret": lambda w, h: w.client.post(
        f"/v1/webhooks/{w.webhook()}/rotate-secret", headers=h
    ),
    "pingWebhook": lambda w, h: w.client.post(f"/v1/webhooks/{w.webhook()}/ping", headers=h),
    "listWebhookDeliveries": lambda w, h: w.client.get(
        f"/v1/webhooks/{w.webhook()}/deliveries", headers=h
    ),
    "getWebhookDelivery": _webhook_delivery,
    "redeliverWebhookDelivery": lambda w, h: _webhook_delivery(w, h, "/redeliver"),
    "listTaskActivity": lambda w, h: w.client.get(
        f"/v1/tasks/{w.placed_task()}/activity", headers=h
    ),
    "listProjectActivity": lambda w, h: w.client.get(
        f"/v1/projects/{w.project()}/activity", headers=h
    ),
    "listChanges": lambda w, h: w.client.get("/v1/changes", headers=h),
    "streamChanges": _stream_changes,
}
SUCCESS = {
    "getHealth": 200,
    "getReadiness": 200,
    "getMetrics": 200,
    "createUser": 201,
    "createSession": 201,
    "getCurrentUser": 200,
    "deleteCurrentSession": 204,
    "createApiKey": 201,
    "listApiKeys": 200,
    "deleteApiKey": 204,
    "createTask": 201,
    "listTasks": 200,
    "getTask": 200,
    "updateTask": 200,
    "deleteTask": 204,
    "runTaskBatch": 200,
    "listTrash": 200,
    "restoreTask": 200,
    "deleteTrashedTask": 204,
    "createProject": 201,
    "listProjects": 200,
    "getProject": 200,
    "updateProject": 200,
    "deleteProject": 204,
    "listMembers": 200,
    "addMember": 201,
    "updateMember": 200,
    "removeMember": 204,
    "createComment": 201,
    "listComments": 200,
    "deleteComment": 204,
    "createWebhook": 201,
    "listWebhooks": 200,
    "getWebhook": 200,
    "updateWebhook": 200,
    "deleteWebhook": 204,
    "rotateWebhookSecret": 200,
    "pingWebhook": 202,
    "listWebhookDeliveries": 200,
    "getWebhookDelivery": 200,
    "redeliverWebhookDelivery": 202,
    "listTaskActivity": 200,
    "listProjectActivity": 200,
    "listChanges": 200,
    "streamChanges": 200,
}
PUBLIC = {"getHealth", "getReadiness", "getMetrics", "createUser", "createSession"}
WITH_SCOPE = {
    "createApiKey",
    "listApiKeys",
    "deleteApiKey",
    "createTask",
    "listTasks",
    "getTask",
    "updateTask",
    "deleteTask",
    "runTaskBatch",
    "listTrash",
    "restoreTask",
    "deleteTrashedTask",
    *PROJECT_SCOPES,
}
# (method, path of a fresh resource) of the operations that read a JSON body.
BODIES: dict[str, Callable[[World], tuple[str, str]]] = {
    "createUser": lambda _w: ("POST", "/v1/users"),
    "createSession": lambda _w: ("POST", "/v1/auth/sessions"),
    "createApiKey": lambda _w: ("POST", "/v1/api-keys"),
    "createTask": lambda _w: ("POST", "/v1/tasks"),
    "updateTask": lambda w: ("PATCH", f"/v1/tasks/{w.task()}"),
    "runTaskBatch": lambda _w: ("POST", "/v1/tasks/batch"),
    "createProject": lambda _w: ("POST", "/v1/projects"),
    "updateProject": lambda w: ("PATCH", f"/v1/projects/{w.project()}"),
    "addMember": lambda w: ("POST", f"/v1/projects/{w.project()}/members"),
    "updateMember": lambda w: ("PATCH", f"/v1/projects/{w.project()}/members/{w.owner.id}"),
    "createComment": lambda w: ("POST", f"/v1/tasks/{w.placed_task()}/comments"),
    "createWebhook": lambda _w: ("POST", "/v1/webhooks"),
    "updateWebhook": lambda w: ("PATCH", f"/v1/webhooks/{w.webhook()}"),
}

Recipe = Callable[[ApiFactory], httpx.Response]
RECIPES: dict[tuple[str, int], Recipe] = {}


def recipe(op: str, status: int) -> Callable[[Recipe], Recipe]:
    def register(fn: Recipe) -> Recipe:
        RECIPES[(op, status)] = fn
        return fn

    return register


def _success(op: str) -> Recipe:
    return lambda make_api: (lambda w: REQUESTS[op](w, w.owner.auth))(world(make_api))


def _unauthenticated(op: str) -> Recipe:
    return lambda make_api: REQUESTS[op](world(make_api), bearer("ths_not-a-session"))


def _without_scope(op: str) -> Recipe:
    def make(make_api: ApiFactory) -> httpx.Response:
        w = world(make_api)
        return REQUESTS[op](w, w.key_without(op))

    return make


def _rate_limited(op: str) -> Recipe:
    def make(make_api: ApiFactory) -> httpx.Response:
        w = world(make_api, RATE_LIMIT_DEFAULT="6/minute", RATE_LIMIT_LOGIN="6/minute")
        if "Webhook" in op:
            w.fixed = {"webhook": w.webhook()}
            w.fixed["delivery"] = w.delivery(w.fixed["webhook"])
            return _until_limited(w, op)
        w.fixed = {"task": w.task(), "key": w.key_id(), "project": w.project()}
        w.fixed["trashed"] = w.trashed()
        w.fixed["placed"] = w.placed_task()
        w.fixed["other"] = w.api.account().email
        w.fixed["member"] = w.member(w.fixed["project"])
        return _until_limited(w, op)

    return make


def _until_limited(w: World, op: str) -> httpx.Response:
    for _ in range(10):
        response = REQUESTS[op](w, w.owner.auth)
        if response.status_code == 429:
            break
    return response


def _unavailable(op: str) -> Recipe:
    def make(make_api: ApiFactory) -> httpx.Response:
        w = world(make_api, DATABASE_URL=DEAD_DATABASE)
        return REQUESTS[op](w, w.owner.auth)

    return make


def _raw_body(op: str, content: bytes, content_type: str) -> Recipe:
    def make(make_api: ApiFactory) -> httpx.Response:
        w = world(make_api)
        method, path = BODIES[op](w)
        headers = {**w.owner.auth, "Content-Type": content_type}
        return w.client.request(method, path, content=content, headers=headers)

    return make


for _op in REQUESTS:
    recipe(_op, SUCCESS[_op])(_success(_op))
    if _op in PUBLIC and _op not in BODIES:
        continue
    recipe(_op, 429)(_rate_limited(_op))
    recipe(_op, 503)(_unavailable(_op))
    if _op not in PUBLIC:
        recipe(_op, 401)(_unauthenticated(_op))
    if _op in WITH_SCOPE or _op == "deleteCurrentSession":
        recipe(_op, 403)(_without_scope(_op))
    if _op in BODIES:
        recipe(_op, 400)(_raw_body(_op, b'{"title": ', "application/json"))
        recipe(_op, 413)(
            _raw_body(_op, b'{"a": "' + b"x" * (1024 * 1024) + b'"}', "application/json")
        )
        recipe(_op, 415)(_raw_body(_op, b"{}", "text/plain"))
        recipe(_op, 422)(_raw_body(_op, b'{"not_a_field": 1}', "application/json"))


@recipe("getReadiness", 503)
def _readiness_without_database(make_api: ApiFactory) -> httpx.Response:
    return world(make_api, DATABASE_URL=DEAD_DATABASE).client.get("/health/ready")


@recipe("createUser", 403)
def _signup_disabled(make_api: ApiFactory) -> httpx.Response:
    w = world(make_api)
    return make_api(ALLOW_SIGNUP="false").register(w.owner.email + ".other")


@recipe("createUser", 409)
def _email_taken(make_api: ApiFactory) -> httpx.Response:
    w = world(make_api)
    return w.api.register(w.owner.email.upper())


@recipe("createSession", 401)
def _wrong_password(make_api: ApiFactory) -> httpx.Response:
    w = world(make_api)
    return w.api.login(w.owner.email, "not the password at all")


@recipe("deleteApiKey", 404)
def _unknown_key(make_api: ApiFactory) -> httpx.Response:
    w = world(make_api)
    return w.client.delete(f"/v1/api-keys/{uuid.uuid4()}", headers=w.owner.auth)


@recipe("createTask", 404)
def _unknown_project(make_api: ApiFactory) -> httpx.Response:
    w = world(make_api)
    body = {"title": "t", "project_id": str(uuid.uuid4())}
    return w.client.post("/v1/tasks", json=body, headers=w.owner.auth)


def _idempotency_key_in_flight(op: str) -> Recipe:
    def make(make_api: ApiFactory) -> httpx.Response:
        w = world(make_api)
        store = w.api.container.idempotency_store()
        # The same path twice: the fingerprint covers it.
        w.fixed = {"placed": w.placed_task()} if op == "createComment" else {}
        REQUESTS[op](w, {**w.owner.auth, "Idempotency-Key": "probe"})
        probe = asyncio.run(store.begin(f"{w.owner.id}:probe", "?", 60))
        assert probe is not None
        assert asyncio.run(store.begin(f"{w.owner.id}:busy", probe.fingerprint, 60)) is None
        return REQUESTS[op](w, {**w.owner.auth, "Idempotency-Key": "busy"})

    return make


for _op in ("createTask", "createProject", "createComment", "runTaskBatch"):
    recipe(_op, 409)(_idempotency_key_in_flight(_op))


def _batch_stops_at(update: dict[str, Any]) -> Recipe:
    """An atomic batch whose second operation (an update of `update`) fails."""

    def make(make_api: ApiFactory) -> httpx.Response:
        w = world(make_api)
        task_id = w.task()
        operation = {"op": "update", "data": {"title": "u"}, "id": task_id, **update}
        body = {"operations": [{"op": "create", "data": {"title": "t"}}, operation]}
        return w.client.post("/v1/tasks/batch", json=body, headers=w.owner.auth)

    return make


recipe("runTaskBatch", 404)(_batch_stops_at({"id": str(uuid.uuid4())}))
recipe("runTaskBatch", 412)(_batch_stops_at({"if_match": '"stale.0"'}))


@recipe("createTask", 303)
def _replay_too_large_to_keep(make_api: ApiFactory) -> httpx.Response:
    w = world(make_api, IDEMPOTENCY_MAX_RESPONSE_BYTES="100")
    body = {"title": "t", "description": "x" * 200}
    headers = {**w.owner.auth, "Idempotency-Key": "large"}
    assert w.client.post("/v1/tasks", json=body, headers=headers).status_code == 201
    return w.client.post("/v1/tasks", json=body, headers=headers, follow_redirects=False)


@recipe("listTasks", 400)
def _tampered_cursor(make_api: ApiFactory) -> httpx.Response:
    w = world(make_api)
    return w.client.get("/v1/tasks", params={"cursor": "not-a-cursor"}, headers=w.owner.auth)


@recipe("listTasks", 422)
def _limit_out_of_range(make_api: ApiFactory) -> httpx.Response:
    w = world(make_api)
    return w.client.get("/v1/tasks", params={"limit": "0"}, headers=w.owner.auth)


@recipe("createApiKey", 409)
def _key_cap_reached(make_api: ApiFactory) -> httpx.Response:
    w = world(make_api, MAX_API_KEYS_PER_USER="1")
    body = {"name": "k", "scopes": ["tasks:read"]}
    assert w.client.post("/v1/api-keys", json=body, headers=w.owner.auth).status_code == 201
    return w.client.post("/v1/api-keys", json=body, headers=w.owner.auth)


@recipe("listApiKeys", 400)
def _tampered_key_cursor(make_api: ApiFactory) -> httpx.Response:
    w = world(make_api)
    return w.client.get("/v1/api-keys", params={"cursor": "not-a-cursor"}, headers=w.owner.auth)


@recipe("listApiKeys", 422)
def _key_limit_out_of_range(make_api: ApiFactory) -> httpx.Response:
    w = world(make_api)
    return w.client.get("/v1/api-keys", params={"limit": "0"}, headers=w.owner.auth)


@recipe("getTask", 304)
def _not_modified(make_api: ApiFactory) -> httpx.Response:
    w = world(make_api)
    task = w.client.post("/v1/tasks", json={"title": "t"}, headers=w.owner.auth)
    etag = task.headers["etag"]
    return w.client.get(task.headers["location"], headers={**w.owner.auth, "If-None-Match": etag})


def _unknown_task(method: str) -> Recipe:
    def make(make_api: ApiFactory) -> httpx.Response:
        w = world(make_api)
        headers = {**w.owner.auth, **JSON}
        body = b'{"title": "u"}' if method == "PATCH" else None
        return w.client.request(method, f"/v1/tasks/{uuid.uuid4()}", content=body, headers=headers)

    return make


def _stale_if_match(method: str) -> Recipe:
    def make(make_api: ApiFactory) -> httpx.Response:
        w = world(make_api)
        task_id = w.task()
        headers = {**w.owner.auth, **JSON, "If-Match": f'"{task_id}.0"'}
        body = b'{"title": "u"}' if method == "PATCH" else None
        return w.client.request(method, f"/v1/tasks/{task_id}", content=body, headers=headers)

    return make


def _lost_race(method: str) -> Recipe:
    """Another writer changes the task between this request's read and its write."""

    def make(make_api: ApiFactory) -> httpx.Response:
        from adapters.memory.tasks import MemoryTaskRepository

        w = world(make_api)
        task_id = w.task()
        name = "update" if method == "PATCH" else "trash"
        real = getattr(MemoryTaskRepository, name)

        async def beaten(self: MemoryTaskRepository, *args: Any) -> bool | list[str]:
            return False if name == "update" else []  # the stored version moved on meanwhile

        setattr(MemoryTaskRepository, name, beaten)
        try:
            body = b'{"title": "u"}' if method == "PATCH" else None
            headers = {**w.owner.auth, **JSON}
            return w.client.request(method, f"/v1/tasks/{task_id}", content=body, headers=headers)
        finally:
            setattr(MemoryTaskRepository, name, real)

    return make


for _op, _method in (("getTask", "GET"), ("updateTask", "PATCH"), ("deleteTask", "DELETE")):
    recipe(_op, 404)(_unknown_task(_method))
for _op, _method in (("updateTask", "PATCH"), ("deleteTask", "DELETE")):
    recipe(_op, 412)(_stale_if_match(_method))
    recipe(_op, 409)(_lost_race(_method))


@recipe("createProject", 303)
def _project_replay_too_large_to_keep(make_api: ApiFactory) -> httpx.Response:
    w = world(make_api, IDEMPOTENCY_MAX_RESPONSE_BYTES="100")
    body = {"name": "p", "description": "x" * 200}
    headers = {**w.owner.auth, "Idempotency-Key": "large"}
    assert w.client.post("/v1/projects", json=body, headers=headers).status_code == 201
    return w.client.post("/v1/projects", json=body, headers=headers, follow_redirects=False)


@recipe("getProject", 304)
def _project_not_modified(make_api: ApiFactory) -> httpx.Response:
    w = world(make_api)
    made = w.client.post("/v1/projects", json={"name": "p"}, headers=w.owner.auth)
    etag = made.headers["etag"]
    return w.client.get(made.headers["location"], headers={**w.owner.auth, "If-None-Match": etag})


def _unknown(op: str, resource: str) -> Recipe:
    def make(make_api: ApiFactory) -> httpx.Response:
        w = world(make_api)
        unknown = str(uuid.uuid4())
        if resource == "project":
            w.fixed = {"project": unknown}
        else:
            w.fixed = {"placed": unknown}
        return REQUESTS[op](w, w.owner.auth)

    return make


for _op in (
    "getProject",
    "updateProject",
    "deleteProject",
    "listMembers",
    "addMember",
    "updateMember",
    "removeMember",
):
    recipe(_op, 404)(_unknown(_op, "project"))
for _op in ("createComment", "listComments", "deleteComment", "listTaskActivity"):
    recipe(_op, 404)(_unknown(_op, "task"))
recipe("listProjectActivity", 404)(_unknown("listProjectActivity", "project"))


def _activity_query(op: str, params: dict[str, str]) -> Recipe:
    def make(make_api: ApiFactory) -> httpx.Response:
        w = world(make_api)
        path = (
            f"/v1/tasks/{w.placed_task()}/activity"
            if op == "listTaskActivity"
            else f"/v1/projects/{w.project()}/activity"
        )
        return w.client.get(path, params=params, headers=w.owner.auth)

    return make


for _op in ("listTaskActivity", "listProjectActivity"):
    recipe(_op, 400)(_activity_query(_op, {"cursor": "x"}))
    recipe(_op, 422)(_activity_query(_op, {"limit": "0"}))


def _feed_query(op: str, params: dict[str, str], *, expire: bool = False) -> Recipe:
    def make(make_api: ApiFactory) -> httpx.Response:
        w = world(make_api)
        if expire:
            first = w.client.get("/v1/changes", params={"limit": "1"}, headers=w.owner.auth)
            params["after"] = first.json()["next_cursor"]
            w.task()
            feed = w.api.container.change_feed()
            asyncio.run(feed.purge_before(datetime.now(UTC) + timedelta(days=1), 1000))
        path = "/v1/changes" if op == "listChanges" else "/v1/changes/stream"
        return w.client.get(path, params=params, headers=w.owner.auth)

    return make


recipe("listChanges", 422)(_feed_query("listChanges", {"limit": "0"}))
recipe("streamChanges", 422)(_feed_query("streamChanges", {"after": "x"}))
for _op in ("listChanges", "streamChanges"):
    recipe(_op, 410)(_feed_query(_op, {}, expire=True))


def _stale_project(method: str) -> Recipe:
    def make(make_api: ApiFactory) -> httpx.Response:
        w = world(make_api)
        project_id = w.project()
        headers = {**w.owner.auth, **JSON, "If-Match": f'"{project_id}.0"'}
        body = b'{"name": "u"}' if method == "PATCH" else None
        return w.client.request(method, f"/v1/projects/{project_id}", content=body, headers=headers)

    return make


recipe("updateProject", 412)(_stale_project("PATCH"))
recipe("deleteProject", 412)(_stale_project("DELETE"))


@recipe("updateProject", 409)
def _project_lost_race(make_api: ApiFactory) -> httpx.Response:
    from adapters.memory.projects import MemoryProjectRepository

    w = world(make_api)
    project_id = w.project()
    real = MemoryProjectRepository.update

    async def beaten(self: MemoryProjectRepository, *args: Any) -> bool:
        return False  # the stored version moved on meanwhile

    setattr(MemoryProjectRepository, "update", beaten)  # noqa: B010
    try:
        return w.client.patch(
            f"/v1/projects/{project_id}", json={"name": "u"}, headers=w.owner.auth
        )
    finally:
        setattr(MemoryProjectRepository, "update", real)  # noqa: B010


@recipe("deleteProject", 409)
def _inbox_is_kept(make_api: ApiFactory) -> httpx.Response:
    w = world(make_api)
    inbox = make_inbox(w.api, w.owner.id)
    return w.client.delete(f"/v1/projects/{inbox}", headers=w.owner.auth)


@recipe("addMember", 409)
def _already_a_member(make_api: ApiFactory) -> httpx.Response:
    w = world(make_api)
    project_id = w.project()
    return add_member(w.api, w.owner.token, project_id, w.owner.email, "viewer")


@recipe("updateMember", 409)
def _last_owner_demoted(make_api: ApiFactory) -> httpx.Response:
    w = world(make_api)
    return w.client.patch(
        f"/v1/projects/{w.project()}/members/{w.owner.id}",
        json={"role": "viewer"},
        headers=w.owner.auth,
    )


@recipe("removeMember", 409)
def _last_owner_leaves(make_api: ApiFactory) -> httpx.Response:
    w = world(make_api)
    return w.client.delete(f"/v1/projects/{w.project()}/members/{w.owner.id}", headers=w.owner.auth)


@recipe("listComments", 400)
def _tampered_comment_cursor(make_api: ApiFactory) -> httpx.Response:
    w = world(make_api)
    return w.client.get(
        f"/v1/tasks/{w.placed_task()}/comments", params={"cursor": "x"}, headers=w.owner.auth
    )


@recipe("listComments", 422)
def _comment_limit_out_of_range(make_api: ApiFactory) -> httpx.Response:
    w = world(make_api)
    return w.client.get(
        f"/v1/tasks/{w.placed_task()}/comments", params={"limit": "0"}, headers=w.owner.auth
    )


# --- webhooks ------------------------------------------------------------------------------------


@recipe("createWebhook", 409)
def _webhook_cap_reached(make_api: ApiFactory) -> httpx.Response:
    from domain.use_cases.webhooks import MAX_WEBHOOKS_PER_USER

    w = world(make_api)
    for _ in range(MAX_WEBHOOKS_PER_USER):
        REQUESTS["createWebhook"](w, w.owner.auth)
    return REQUESTS["createWebhook"](w, w.owner.auth)


@recipe("getWebhook", 304)
def _webhook_not_modified(make_api: ApiFactory) -> httpx.Response:
    w = world(make_api)
    made = REQUESTS["createWebhook"](w, w.owner.auth)
    etag = made.headers["etag"]
    return w.client.get(made.headers["location"], headers={**w.owner.auth, "If-None-Match": etag})


def _unknown_webhook(op: str, what: str) -> Recipe:
    def make(make_api: ApiFactory) -> httpx.Response:
        w = world(make_api)
        w.fixed = {what: str(uuid.uuid4())}
        return REQUESTS[op](w, {**w.owner.auth, **JSON})

    return make


for _op in (
    "getWebhook",
    "updateWebhook",
    "deleteWebhook",
    "rotateWebhookSecret",
    "pingWebhook",
    "listWebhookDeliveries",
):
    recipe(_op, 404)(_unknown_webhook(_op, "webhook"))
for _op in ("getWebhookDelivery", "redeliverWebhookDelivery"):
    recipe(_op, 404)(_unknown_webhook(_op, "delivery"))


def _stale_webhook(method: str) -> Recipe:
    def make(make_api: ApiFactory) -> httpx.Response:
        w = world(make_api)
        hook = w.webhook()
        headers = {**w.owner.auth, **JSON, "If-Match": f'"{hook}.0"'}
        body = b'{"description": "u"}' if method == "PATCH" else None
        return w.client.request(method, f"/v1/webhooks/{hook}", content=body, headers=headers)

    return make


recipe("updateWebhook", 412)(_stale_webhook("PATCH"))
recipe("deleteWebhook", 412)(_stale_webhook("DELETE"))


def _webhook_lost_race(op: str) -> Recipe:
    def make(make_api: ApiFactory) -> httpx.Response:
        from adapters.memory.webhooks import MemoryWebhookRepository

        w = world(make_api)
        w.fixed = {"webhook": w.webhook()}
        real = MemoryWebhookRepository.update

        async def beaten(self: MemoryWebhookRepository, *args: Any) -> bool:
            return False  # the stored version moved on meanwhile

        setattr(MemoryWebhookRepository, "update", beaten)  # noqa: B010
        try:
            return REQUESTS[op](w, w.owner.auth)
        finally:
            setattr(MemoryWebhookRepository, "update", real)  # noqa: B010

    return make


recipe("updateWebhook", 409)(_webhook_lost_race("updateWebhook"))
recipe("rotateWebhookSecret", 409)(_webhook_lost_race("rotateWebhookSecret"))


def _disabled_webhook(op: str) -> Recipe:
    def make(make_api: ApiFactory) -> httpx.Response:
        w = world(make_api)
        hook = w.webhook()
        w.fixed = {"webhook": hook, "delivery": w.delivery(hook)}
        off = w.client.patch(f"/v1/webhooks/{hook}", json={"enabled": False}, headers=w.owner.auth)
        assert off.status_code == 200
        return REQUESTS[op](w, w.owner.auth)

    return make


recipe("pingWebhook", 409)(_disabled_webhook("pingWebhook"))
recipe("redeliverWebhookDelivery", 409)(_disabled_webhook("redeliverWebhookDelivery"))


@recipe("listWebhookDeliveries", 400)
def _tampered_delivery_cursor(make_api: ApiFactory) -> httpx.Response:
    w = world(make_api)
    path = f"/v1/webhooks/{w.webhook()}/deliveries"
    return w.client.get(path, params={"cursor": "x"}, headers=w.owner.auth)


@recipe("listWebhookDeliveries", 422)
def _delivery_limit_out_of_range(make_api: ApiFactory) -> httpx.Response:
    w = world(make_api)
    path = f"/v1/webhooks/{w.webhook()}/deliveries"
    return w.client.get(path, params={"limit": "0"}, headers=w.owner.auth)


@recipe("listTrash", 400)
def _tampered_trash_cursor(make_api: ApiFactory) -> httpx.Response:
    w = world(make_api)
    return w.client.get("/v1/trash", params={"cursor": "x"}, headers=w.owner.auth)


@recipe("listTrash", 422)
def _trash_limit_out_of_range(make_api: ApiFactory) -> httpx.Response:
    w = world(make_api)
    return w.client.get("/v1/trash", params={"limit": "201"}, headers=w.owner.auth)


for _op, _method, _suffix in (
    ("restoreTask", "POST", "/restore"),
    ("deleteTrashedTask", "DELETE", ""),
):

    def _not_in_trash(make_api: ApiFactory, method: str = _method, suffix: str = _suffix) -> Any:
        w = world(make_api)
        live = w.task()  # a live task is not in the trash
        return w.client.request(method, f"/v1/trash/{live}{suffix}", headers=w.owner.auth)

    recipe(_op, 404)(_not_in_trash)


@recipe("restoreTask", 409)
def _parent_still_in_the_trash(make_api: ApiFactory) -> httpx.Response:
    w = world(make_api)
    parent = w.task()
    child = w.client.post(
        "/v1/tasks", json={"title": "c", "parent_id": parent}, headers=w.owner.auth
    ).json()["id"]
    w.client.delete(f"/v1/tasks/{parent}", headers=w.owner.auth)
    return w.client.post(f"/v1/trash/{child}/restore", headers=w.owner.auth)


@recipe("deleteTrashedTask", 409)
def _trash_lost_race(make_api: ApiFactory) -> httpx.Response:
    """Another request restores the task between this request's read and its delete."""
    from adapters.memory.tasks import MemoryTaskRepository

    w = world(make_api)
    task_id = w.trashed()
    real = MemoryTaskRepository.delete

    async def beaten(self: MemoryTaskRepository, *args: Any) -> bool:
        return False

    setattr(MemoryTaskRepository, "delete", beaten)  # noqa: B010
    try:
        return w.client.delete(f"/v1/trash/{task_id}", headers=w.owner.auth)
    finally:
        setattr(MemoryTaskRepository, "delete", real)  # noqa: B010


@pytest.fixture(scope="module")
def documented(documented_statuses: dict[tuple[str, str], set[int]]) -> set[tuple[str, int]]:
    ids = {(method, path): op for op, (method, path) in OPERATIONS.items()}
    return {
        (ids[key], status) for key, statuses in documented_statuses.items() for status in statuses
    }


OPERATIONS = {
    "getHealth": ("GET", "/health"),
    "getReadiness": ("GET", "/health/ready"),
    "getMetrics": ("GET", "/metrics"),
    "createUser": ("POST", "/v1/users"),
    "createSession": ("POST", "/v1/auth/sessions"),
    "getCurrentUser": ("GET", "/v1/users/me"),
    "deleteCurrentSession": ("DELETE", "/v1/auth/sessions/current"),
    "createApiKey": ("POST", "/v1/api-keys"),
    "listApiKeys": ("GET", "/v1/api-keys"),
    "deleteApiKey": ("DELETE", "/v1/api-keys/{key_id}"),
    "createTask": ("POST", "/v1/tasks"),
    "listTasks": ("GET", "/v1/tasks"),
    "getTask": ("GET", "/v1/tasks/{task_id}"),
    "updateTask": ("PATCH", "/v1/tasks/{task_id}"),
    "deleteTask": ("DELETE", "/v1/tasks/{task_id}"),
    "runTaskBatch": ("POST", "/v1/tasks/batch"),
    "listTrash": ("GET", "/v1/trash"),
    "restoreTask": ("POST", "/v1/trash/{task_id}/restore"),
    "deleteTrashedTask": ("DELETE", "/v1/trash/{task_id}"),
    "createProject": ("POST", "/v1/projects"),
    "listProjects": ("GET", "/v1/projects"),
    "getProject": ("GET", "/v1/projects/{project_id}"),
    "updateProject": ("PATCH", "/v1/projects/{project_id}"),
    "deleteProject": ("DELETE", "/v1/projects/{project_id}"),
    "listMembers": ("GET", "/v1/projects/{project_id}/members"),
    "addMember": ("POST", "/v1/projects/{project_id}/members"),
    "updateMember": ("PATCH", "/v1/projects/{project_id}/members/{user_id}"),
    "removeMember": ("DELETE", "/v1/projects/{project_id}/members/{user_id}"),
    "createComment": ("POST", "/v1/tasks/{task_id}/comments"),
    "listComments": ("GET", "/v1/tasks/{task_id}/comments"),
    "deleteComment": ("DELETE", "/v1/tasks/{task_id}/comments/{comment_id}"),
    "createWebhook": ("POST", "/v1/webhooks"),
    "listWebhooks": ("GET", "/v1/webhooks"),
    "getWebhook": ("GET", "/v1/webhooks/{webhook_id}"),
    "updateWebhook": ("PATCH", "/v1/webhooks/{webhook_id}"),
    "deleteWebhook": ("DELETE", "/v1/webhooks/{webhook_id}"),
    "rotateWebhookSecret": ("POST", "/v1/webhooks/{webhook_id}/rotate-secret"),
    "pingWebhook": ("POST", "/v1/webhooks/{webhook_id}/ping"),
    "listWebhookDeliveries": ("GET", "/v1/webhooks/{webhook_id}/deliveries"),
    "getWebhookDelivery": ("GET", "/v1/webhooks/{webhook_id}/deliveries/{delivery_id}"),
    "redeliverWebhookDelivery": (
        "POST",
        "/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver",
    ),
    "listTaskActivity": ("GET", "/v1/tasks/{task_id}/activity"),
    "listProjectActivity": ("GET", "/v1/projects/{project_id}/activity"),
    "listChanges": ("GET", "/v1/changes"),
    "streamChanges": ("GET", "/v1/changes/stream"),
}


def test_every_documented_status_has_a_recipe_and_no_other(
    documented: set[tuple[str, int]],
) -> None:
    assert sorted(documented - set(RECIPES)) == [], "documented, but no recipe sends it"
    assert sorted(set(RECIPES) - documented) == [], "sent by a recipe, but not documented"


@pytest.mark.parametrize(("op", "status"), sorted(RECIPES))
def test_the_service_sends_each_documented_status(
    make_api: ApiFactory,
    answers_are_documented: list[tuple[str, str, int]],
    op: str,
    status: int,
) -> None:
    response = RECIPES[(op, status)](make_api)
    assert response.status_code == status, response.text[:500]
    method, path = OPERATIONS[op]
    assert (method, path, status) in answers_are_documented
