"""What the handlers and guards call, put in the app state once by the composition root.

One way for every handler: `services(request).<name>`. Use cases are factories (a fresh one per
call, over a fresh unit of work); the others are long-lived. Reading them from the app state
costs a dictionary lookup, where Litestar's dependency injection would resolve, convert and clean
up each one per request; none of them adds anything to the OpenAPI text.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from litestar.connection import ASGIConnection

from adapters.http.cursors import CursorCodec
from domain.ports import ConcurrencyLimiter, HealthProbe, IdempotencyStore
from domain.ports.admission import Admission
from domain.ports.events import FeedSignal
from domain.use_cases.events import ListProjectActivity, ListTaskActivity, ReadChanges
from domain.use_cases.identity import (
    GetCurrentUser,
    IssueApiKey,
    ListApiKeys,
    LogIn,
    LogOut,
    RegisterUser,
    RevokeApiKey,
)
from domain.use_cases.projects import (
    AddMember,
    CreateComment,
    CreateProject,
    DeleteComment,
    DeleteProject,
    GetProject,
    ListComments,
    ListMembers,
    ListProjects,
    RemoveMember,
    UpdateMember,
    UpdateProject,
)
from domain.use_cases.task_batch import RunTaskBatch
from domain.use_cases.tasks import (
    CreateTask,
    DeleteTask,
    DeleteTrashedTask,
    GetTask,
    ListTasks,
    ListTrash,
    RestoreTask,
    UpdateTask,
)
from domain.use_cases.webhooks import (
    CreateWebhook,
    DeleteWebhook,
    GetDelivery,
    GetWebhook,
    ListDeliveries,
    ListWebhooks,
    PingWebhook,
    RedeliverDelivery,
    RotateWebhookSecret,
    UpdateWebhook,
)

SERVICES = "services"


class Draining:
    """Whether this process is shutting down. Once set, readiness answers 503 `draining` so a
    load balancer stops sending new requests while the process still serves the ones it gets."""

    def __init__(self) -> None:
        self.active = False

    def begin(self) -> None:
        self.active = True


@dataclass(frozen=True, slots=True)
class ChangeStreams:
    """What the change stream needs besides the feed use case: the wake-up signal and its
    timing (seconds)."""

    signal: FeedSignal
    poll_seconds: float
    keepalive_seconds: float


@dataclass(frozen=True, slots=True)
class Services:
    admission: Admission
    idempotency_store: IdempotencyStore
    idempotency_max_response_bytes: int
    cursor_codec: CursorCodec
    search_slots: ConcurrencyLimiter
    health_probes: Sequence[HealthProbe]
    health_timeout: float
    draining: Draining

    register_user: Callable[[], RegisterUser]
    log_in: Callable[[], LogIn]
    log_out: Callable[[], LogOut]
    get_current_user: Callable[[], GetCurrentUser]
    issue_api_key: Callable[[], IssueApiKey]
    list_api_keys: Callable[[], ListApiKeys]
    revoke_api_key: Callable[[], RevokeApiKey]

    create_task: Callable[[], CreateTask]
    get_task: Callable[[], GetTask]
    list_tasks: Callable[[], ListTasks]
    update_task: Callable[[], UpdateTask]
    delete_task: Callable[[], DeleteTask]
    run_task_batch: Callable[[], RunTaskBatch]
    list_trash: Callable[[], ListTrash]
    restore_task: Callable[[], RestoreTask]
    delete_trashed_task: Callable[[], DeleteTrashedTask]

    create_project: Callable[[], CreateProject]
    list_projects: Callable[[], ListProjects]
    get_project: Callable[[], GetProject]
    update_project: Callable[[], UpdateProject]
    delete_project: Callable[[], DeleteProject]
    list_members: Callable[[], ListMembers]
    add_member: Callable[[], AddMember]
    update_member: Callable[[], UpdateMember]
    remove_member: Callable[[], RemoveMember]

    create_comment: Callable[[], CreateComment]
    list_comments: Callable[[], ListComments]
    delete_comment: Callable[[], DeleteComment]

    create_webhook: Callable[[], CreateWebhook]
    list_webhooks: Callable[[], ListWebhooks]
    get_webhook: Callable[[], GetWebhook]
    update_webhook: Callable[[], UpdateWebhook]
    delete_webhook: Callable[[], DeleteWebhook]
    rotate_webhook_secret: Callable[[], RotateWebhookSecret]
    ping_webhook: Callable[[], PingWebhook]
    list_deliveries: Callable[[], ListDeliveries]
    get_delivery: Callable[[], GetDelivery]
    redeliver: Callable[[], RedeliverDelivery]
    list_task_activity: Callable[[], ListTaskActivity]
    list_project_activity: Callable[[], ListProjectActivity]
    read_changes: Callable[[], ReadChanges]
    change_streams: ChangeStreams


def services(connection: ASGIConnection[Any, Any, Any, Any]) -> Services:
    found: Services = connection.app.state[SERVICES]
    return found
