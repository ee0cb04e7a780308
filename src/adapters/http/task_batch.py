"""`POST /v1/tasks/batch`: several task creates, updates and deletes in one request.

The body is decoded in two steps: the envelope (operations, their `op`, `id`, `if_match`; a
misfit there is a 422 for the whole request) keeping each `data` raw, then each `data` as the
single endpoint's body type (TaskCreate / TaskPatch), whose misfit is that operation's 422. The
operations run through `RunTaskBatch` (the single use cases); field names in every answer are
paths in the batch body (`operations[2].data.title`).
"""

from __future__ import annotations

from dataclasses import replace
from http import HTTPStatus
from typing import Any

import msgspec
from litestar import Controller, Request, Response
from litestar.openapi.datastructures import ResponseSpec
from litestar.status_codes import HTTP_200_OK

from adapters.http.auth import SCOPE_OPT, charge, current_principal, principal_guard
from adapters.http.bodies import decode_body, decode_part, under
from adapters.http.conditional import expected_version
from adapters.http.openapi import documented_body, documented_headers
from adapters.http.problems import PROBLEM_JSON, OperationProblem, domain_problem
from adapters.http.responses import EncodedJson
from adapters.http.routing import post
from adapters.http.schemas import (
    BatchCreate,
    BatchDelete,
    BatchResult,
    TaskBatch,
    TaskBatchResults,
    TaskCreate,
    TaskPatch,
)
from adapters.http.services import services
from adapters.http.tasks import changes_of, draft_of, task_out
from domain.auth import Scope
from domain.errors import DomainError, FieldError, Invalid
from domain.use_cases.task_batch import (
    BatchFailed,
    CreateOp,
    DeleteOp,
    Operation,
    OperationResult,
    Outcome,
    Rejected,
    UpdateOp,
    requests_counted,
)

_encoder = msgspec.json.Encoder()
_SUCCESS_STATUS = {Outcome.CREATED: 201, Outcome.UPDATED: 200, Outcome.DELETED: 204}


def _data_path(index: int) -> str:
    return f"operations[{index}].data"


def _operation(index: int, item: Any) -> Operation:
    """One envelope item as the use case's operation; a `data` that does not fit is Rejected."""
    try:
        if isinstance(item, BatchCreate):
            return CreateOp(draft_of(decode_part(item.data, TaskCreate, _data_path(index))))
        if isinstance(item, BatchDelete):
            return DeleteOp(item.id, expected_version(item.if_match, item.id))
        patch = decode_part(item.data, TaskPatch, _data_path(index))
        return UpdateOp(item.id, changes_of(patch), expected_version(item.if_match, item.id))
    except Invalid as exc:
        return Rejected(exc)


def _named_in_batch(index: int, operation: Operation, error: DomainError) -> DomainError:
    """The operation's error with the fields the use case names put under the operation's
    `data` (a Rejected one's already are)."""
    if isinstance(error, Invalid) and not isinstance(operation, Rejected):
        errors = [FieldError(under(_data_path(index), e.field), e.message) for e in error.errors]
        return replace(error, errors=errors)
    return error


def _result(result: OperationResult, operation: Operation) -> BatchResult:
    if result.error is not None:
        problem = domain_problem(_named_in_batch(result.index, operation, result.error))[0]
        return BatchResult(index=result.index, status=problem.status, problem=problem)
    status = _SUCCESS_STATUS[result.outcome]
    if result.task is None:
        return BatchResult(index=result.index, status=status)
    return BatchResult(index=result.index, status=status, task=task_out(result.task))


class TaskBatchController(Controller):
    path = "/v1/tasks/batch"
    tags = ["tasks"]
    guards = [principal_guard]
    security = [{"bearer": []}]

    @post(
        "/",
        idempotent=True,
        status_code=HTTP_200_OK,
        operation_id="runTaskBatch",
        summary="Create, update and delete tasks in one request",
        description="1 to 100 operations: `create` (`data`: a create body), `update` (`id`, "
        "`data`: a merge patch, `if_match`: an ETag) and `delete` (`id`, `if_match`). Each runs "
        "exactly as its single request (POST, PATCH, DELETE /v1/tasks) would, with the same "
        "rules, access and cap. The answer is 200 with one result per operation, in order: "
        "`status` is what the single request would have answered (201, 200, 204, 403, 404, "
        "409, 412, 422), with the `task` (created or updated) or the `problem`. Field names in "
        "problems are paths in this body (`operations[2].data.title`).\n\n"
        "`atomic: true` (default): all or nothing, in one transaction. When an operation fails "
        "nothing is changed, and the answer is that operation's problem with its status (403, "
        "404, 409, 412, 422) and an `operation` member (its index). `atomic: false`: each "
        "operation commits or fails on its own.\n\n"
        "A body whose envelope does not fit (no or more than 100 operations, an unknown `op`, "
        "a missing `id` or `data`, an unknown field) is 422 naming `operations[i]...`, and "
        "nothing is run. A batch of n operations counts as 1 + ceil(n/10) requests for the "
        "rate limit (its RateLimit-* headers show the budget after all of them); a batch the "
        "budget cannot take is 429 and runs nothing (counted as one request). "
        "`Idempotency-Key` works as on POST /v1/tasks: a repeat with the same body returns the "
        "first answer (`Idempotent-Replayed: true`) without running anything again (and counts "
        "as one request); an atomic batch that failed keeps nothing, so its retry runs again.",
        opt={
            SCOPE_OPT: Scope.TASKS_WRITE,
            **documented_body(TaskBatch),
            **documented_headers({200: ("Idempotent-Replayed",)}),
        },
        responses={
            status: ResponseSpec(
                data_container=OperationProblem,
                generate_examples=False,
                description=HTTPStatus(status).phrase,
                media_type=PROBLEM_JSON,
            )
            for status in (403, 404, 409, 412, 422)
        },
    )
    async def run(self, request: Request[Any, Any, Any]) -> Response[TaskBatchResults]:
        body = await decode_body(request, TaskBatch)
        await charge(request, requests_counted(len(body.operations)) - 1)
        operations = [_operation(i, item) for i, item in enumerate(body.operations)]
        try:
            results = await (
                services(request)
                .run_task_batch()
                .execute(current_principal(request), operations, atomic=body.atomic)
            )
        except BatchFailed as failed:
            # Raised on (not answered here), so that an idempotent first run that failed keeps
            # nothing and its retry runs again, as on POST /v1/tasks.
            error = _named_in_batch(failed.index, operations[failed.index], failed.error)
            raise BatchFailed(failed.index, error) from failed.error
        answer = TaskBatchResults(results=[_result(r, operations[r.index]) for r in results])
        return EncodedJson(_encoder.encode(answer))
