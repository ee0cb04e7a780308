"""The ceiling: the same three task endpoints as Taskhub with nothing but Litestar, an asyncpg
pool and msgspec (no ORM, no auth, no rate limit, no logging, no metrics).

It reads and writes Taskhub's own `tasks` table (same rows, same JSON shape; a create also moves
the owner's `task_counts` row under the same cap, as Taskhub's does), so the ratio
Taskhub/ceiling is the price of everything Taskhub does on top of the query. Configured by the
environment (bench/run.py sets it):
  BENCH_CEILING_DSN   postgresql://... (plain asyncpg DSN)
  BENCH_OWNER_ID      the user whose tasks are served (there is no authentication)
  BENCH_PROJECT_ID    the project they are read from and created in (the seed's shared project)
  BENCH_POOL_MIN / BENCH_POOL_MAX   asyncpg pool bounds per worker
  BENCH_CEILING_RESET  "none" (default): connections go back to the pool as they are, one round
                       trip per request (the bare app at its fastest); "pool": asyncpg's
                       documented default, which sends its reset query (advisory unlock, CLOSE
                       ALL, UNLISTEN, RESET ALL) on every release, a second round trip
Run: uvicorn bench.ceiling_app:app --workers 2
"""

from __future__ import annotations

import base64
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated, Literal

import asyncpg  # type: ignore[import-untyped]
import msgspec
import uuid_utils
from litestar import Litestar, Response, get, post
from litestar.datastructures import State
from litestar.exceptions import NotFoundException, ValidationException
from litestar.params import Parameter

JSON = "application/json"

_COLUMNS = (
    "id, title, description, status, priority, labels, due_at, completed_at, created_at, "
    "updated_at, version, project_id, parent_id, assignee_id"
)
# The user's tasks are those of the project the seed put them in; like Taskhub, neither read
# shows a task in the trash (which is also what lets the list use the partial sort index).
SELECT_ONE = (
    f"SELECT {_COLUMNS} FROM tasks WHERE id = $1 AND project_id = $2 AND deleted_at IS NULL"
)
SELECT_PAGE = (
    f"SELECT {_COLUMNS} FROM tasks WHERE project_id = $1 AND deleted_at IS NULL "
    "ORDER BY created_at DESC, id DESC LIMIT $2"
)
# The same work as Taskhub's create: the owner's task counter moves (while under the cap, $15)
# in the statement that inserts the task, so the yardstick pays for the per-user task cap too.
INSERT = (
    "WITH counted AS (INSERT INTO task_counts (owner_id, n) VALUES ($2, 1) "
    "ON CONFLICT (owner_id) DO UPDATE SET n = task_counts.n + 1 WHERE task_counts.n < $15 "
    "RETURNING n) "
    "INSERT INTO tasks (id, owner_id, project_id, title, description, status, priority, labels, "
    "due_at, completed_at, created_at, updated_at, version, title_folded, description_folded) "
    "SELECT $1, $2, $16, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14 FROM counted"
)
MAX_TASKS = 100_000


class TaskOut(msgspec.Struct):
    """Taskhub's task JSON; field order is the SELECT's column order (built positionally)."""

    id: uuid.UUID
    title: str
    description: str | None
    status: str
    priority: int
    labels: list[str]
    due_at: datetime | None
    completed_at: datetime | None
    created_at: datetime
    updated_at: datetime
    version: int
    project_id: uuid.UUID
    parent_id: uuid.UUID | None
    assignee_id: uuid.UUID | None


class TaskPage(msgspec.Struct):
    items: list[TaskOut]
    next_cursor: str | None


class TaskCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    title: str
    description: str | None = None
    status: Literal["todo", "in_progress", "done"] = "todo"
    priority: Annotated[int, msgspec.Meta(ge=1, le=4)] = 1
    labels: list[str] = msgspec.field(default_factory=list)
    due_at: datetime | None = None
    project_id: uuid.UUID | None = None


_encoder = msgspec.json.Encoder()


def _owner_id() -> uuid.UUID:
    return uuid.UUID(os.environ["BENCH_OWNER_ID"])


class _NoResetConnection(asyncpg.Connection):  # type: ignore[misc]
    """Returned to the pool as it is: no reset round trip (BENCH_CEILING_RESET=none)."""

    def get_reset_query(self) -> str:
        return ""


@asynccontextmanager
async def _pool(app: Litestar) -> AsyncIterator[None]:
    no_reset = os.environ.get("BENCH_CEILING_RESET", "none") == "none"
    pool = await asyncpg.create_pool(
        os.environ["BENCH_CEILING_DSN"],
        connection_class=_NoResetConnection if no_reset else asyncpg.Connection,
        min_size=int(os.environ.get("BENCH_POOL_MIN", "10")),
        max_size=int(os.environ.get("BENCH_POOL_MAX", "20")),
    )
    app.state.pool = pool
    app.state.owner_id = _owner_id()
    app.state.project_id = uuid.UUID(os.environ["BENCH_PROJECT_ID"])
    try:
        yield
    finally:
        await pool.close()


@get("/health")
async def health() -> dict[str, str]:
    return {"status": "healthy"}


@get("/tasks/{task_id:str}")
async def get_task(state: State, task_id: str) -> Response[bytes]:
    try:
        key = uuid.UUID(task_id)
    except ValueError:
        raise NotFoundException() from None
    row = await state.pool.fetchrow(SELECT_ONE, key, state.project_id)
    if row is None:
        raise NotFoundException()
    task = TaskOut(*row)
    return Response(
        _encoder.encode(task), media_type=JSON, headers={"ETag": f'"{task.id}.{task.version}"'}
    )


@get("/tasks")
async def list_tasks(
    state: State, limit: Annotated[int, Parameter(ge=1, le=200)] = 50
) -> Response[bytes]:
    rows = await state.pool.fetch(SELECT_PAGE, state.project_id, limit + 1)
    items = [TaskOut(*row) for row in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        last = items[-1]
        raw = _encoder.encode([last.created_at, last.id])
        next_cursor = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    return Response(_encoder.encode(TaskPage(items, next_cursor)), media_type=JSON)


@post("/tasks")
async def create_task(state: State, data: TaskCreate) -> Response[bytes]:
    title = data.title.strip()
    if not 1 <= len(title) <= 500:
        raise ValidationException("title must be 1 to 500 characters")
    labels = list(dict.fromkeys(label.strip() for label in data.labels))
    if len(labels) > 20 or not all(1 <= len(label) <= 50 for label in labels):
        raise ValidationException("labels: at most 20 of 1 to 50 characters")
    if data.project_id not in (None, state.project_id):
        raise NotFoundException()
    now = datetime.now(UTC)
    task = TaskOut(
        id=uuid.UUID(str(uuid_utils.uuid7())),
        title=title,
        description=data.description,
        status=data.status,
        priority=data.priority,
        labels=labels,
        due_at=data.due_at,
        completed_at=now if data.status == "done" else None,
        created_at=now,
        updated_at=now,
        version=1,
        project_id=state.project_id,
        parent_id=None,
        assignee_id=None,
    )
    description = task.description
    status = await state.pool.execute(
        INSERT,
        task.id,
        state.owner_id,
        task.title,
        description,
        task.status,
        task.priority,
        task.labels,
        task.due_at,
        task.completed_at,
        task.created_at,
        task.updated_at,
        task.version,
        title.casefold(),
        None if description is None else description.casefold(),
        MAX_TASKS,
        state.project_id,
    )
    if status.endswith(" 0"):  # the counter is at the cap: nothing was inserted
        return Response(b"", status_code=409)
    return Response(
        _encoder.encode(task),
        status_code=201,
        media_type=JSON,
        headers={"Location": f"/tasks/{task.id}", "ETag": f'"{task.id}.1"'},
    )


app = Litestar(
    route_handlers=[health, get_task, list_tasks, create_task],
    lifespan=[_pool],
    openapi_config=None,
    logging_config=None,
)
