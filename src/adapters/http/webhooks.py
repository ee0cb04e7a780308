"""Webhooks over HTTP: parse, call one use case, map.

Who may see a webhook (its owner, with `webhooks:manage`) is the use cases' business. ETags name
the webhook and its version. Creation is not idempotent under `Idempotency-Key` (as with API
keys): its answer holds the secret, which is never stored for a replay. A deliveries cursor
names its webhook, so it continues only the list it was made for.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import HeaderParameter, Parameter, PathParameter
from litestar.status_codes import HTTP_201_CREATED, HTTP_202_ACCEPTED, HTTP_204_NO_CONTENT

from adapters.http.auth import current_principal, principal_guard
from adapters.http.bodies import MERGE_PATCH_TYPES, decode_body
from adapters.http.conditional import etag_of, expected_version, not_modified
from adapters.http.cursors import CursorCodec, moment_cursor, moment_position, next_page_link
from adapters.http.openapi import PROBLEMS, documented_body, documented_headers, documented_query
from adapters.http.responses import EncodedJson
from adapters.http.routing import delete, get, patch, post
from adapters.http.schemas import (
    AttemptOut,
    DeliveryDetail,
    DeliveryListQuery,
    DeliveryOut,
    DeliveryPage,
    WebhookCreate,
    WebhookCreated,
    WebhookList,
    WebhookOut,
    WebhookPatch,
    WebhookSecretOut,
)
from adapters.http.services import services
from domain.errors import Invalid
from domain.ports.webhooks import DeliveryPosition
from domain.use_cases.webhooks import DEFAULT_DELIVERY_PAGE
from domain.webhooks import Attempt, Delivery, Webhook, WebhookDraft

_encoder = msgspec.json.Encoder()
_CURSOR_KIND = "deliveries"

WebhookId = Annotated[str, PathParameter(description="The webhook's id.")]
DeliveryId = Annotated[str, PathParameter(description="The delivery's id (its `webhook-id`).")]
NOT_MODIFIED = {304: ResponseSpec(None, description="Not modified: the ETag still matches")}


def _fields(webhook: Webhook) -> dict[str, Any]:
    return {
        "id": webhook.id,
        "url": webhook.url,
        "events": list(webhook.events),
        "project_id": webhook.project_id,
        "description": webhook.description,
        "enabled": webhook.enabled,
        "disabled_reason": webhook.disabled_reason,
        "created_at": webhook.created_at,
        "updated_at": webhook.updated_at,
        "version": webhook.version,
    }


def webhook_out(webhook: Webhook) -> WebhookOut:
    return WebhookOut(**_fields(webhook))


def webhook_response(
    webhook: Webhook, status: int = 200, body: Any = None, extra: dict[str, str] | None = None
) -> EncodedJson:
    headers = {"ETag": etag_of(webhook.id, webhook.version), **(extra or {})}
    content = body if body is not None else webhook_out(webhook)
    return EncodedJson(_encoder.encode(content), status_code=status, headers=headers)


def _delivery_fields(delivery: Delivery) -> dict[str, Any]:
    return {
        "id": delivery.id,
        "webhook_id": delivery.webhook_id,
        "event_id": delivery.event_id,
        "event_type": delivery.event_type,
        "status": delivery.status,
        "attempt_count": delivery.attempts,
        "next_attempt_at": delivery.next_attempt_at,
        "created_at": delivery.created_at,
        "updated_at": delivery.updated_at,
    }


def delivery_out(delivery: Delivery) -> DeliveryOut:
    return DeliveryOut(**_delivery_fields(delivery))


def attempt_out(attempt: Attempt) -> AttemptOut:
    return AttemptOut(
        attempted_at=attempt.attempted_at,
        duration_ms=attempt.duration_ms,
        response_status=attempt.response_status,
        error=attempt.error,
        response_body=attempt.response_body,
    )


def _changes(body: msgspec.Struct) -> dict[str, object]:
    """The fields a merge patch names (`None` included: it clears)."""
    return {
        name: getattr(body, name)
        for name in body.__struct_fields__
        if getattr(body, name) is not msgspec.UNSET
    }


def delivery_cursor(codec: CursorCodec, webhook_id: str, position: DeliveryPosition) -> str:
    return moment_cursor(codec, _CURSOR_KIND, {"w": webhook_id}, position.created_at, position.id)


def delivery_position(codec: CursorCodec, webhook_id: str, cursor: str) -> DeliveryPosition:
    """The position a deliveries cursor of this webhook names; 400 for anything else."""
    return DeliveryPosition(*moment_position(codec, _CURSOR_KIND, {"w": webhook_id}, cursor))


class WebhooksController(Controller):
    path = "/v1/webhooks"
    tags = ["webhooks"]
    guards = [principal_guard]
    security = [{"bearer": []}]

    @post(
        "/",
        status_code=HTTP_201_CREATED,
        operation_id="createWebhook",
        summary="Subscribe a URL to events",
        description="Needs webhooks:manage. The answer carries the signing `secret`, shown only "
        "here. 422 names each bad field: `url` (scheme, user-info, length, a non-global "
        "address), `events[i]` (an unknown type or prefix), `project_id` (not a project you can "
        "read; a key limited to projects must name one of them). 409 at 100 webhooks. Not "
        "replayed under `Idempotency-Key` (the secret is never stored).",
        opt={
            **documented_body(WebhookCreate),
            **documented_headers({201: ("ETag", "Location")}),
        },
        responses=PROBLEMS(403, 409),
    )
    async def create(self, request: Request[Any, Any, Any]) -> Response[WebhookCreated]:
        body = await decode_body(request, WebhookCreate)
        created = (
            await services(request)
            .create_webhook()
            .execute(
                current_principal(request),
                WebhookDraft(
                    url=body.url,
                    events=body.events,
                    project_id=body.project_id,
                    description=body.description,
                    enabled=body.enabled,
                ),
            )
        )
        hook = created.webhook
        root = str(request.scope.get("root_path", ""))
        content = WebhookCreated(**_fields(hook), secret=created.secret)
        return webhook_response(
            hook, HTTP_201_CREATED, content, {"Location": f"{root}/v1/webhooks/{hook.id}"}
        )

    @get(
        "/",
        operation_id="listWebhooks",
        summary="List your webhooks, oldest first",
        description="Needs webhooks:manage. Only your own webhooks; never a secret.",
        responses=PROBLEMS(403),
    )
    async def list_webhooks(self, request: Request[Any, Any, Any]) -> Response[WebhookList]:
        hooks = await services(request).list_webhooks().execute(current_principal(request))
        return EncodedJson(_encoder.encode(WebhookList(items=[webhook_out(h) for h in hooks])))

    @get(
        "/{webhook_id:str}",
        operation_id="getWebhook",
        summary="Get a webhook",
        description="Needs webhooks:manage; another user's webhook is 404. `If-None-Match` with "
        "the current ETag answers 304.",
        opt=documented_headers({200: ("ETag",), 304: ("ETag",)}),
        responses={**NOT_MODIFIED, **PROBLEMS(403, 404)},
    )
    async def get_webhook(
        self,
        request: Request[Any, Any, Any],
        webhook_id: WebhookId,
        if_none_match: Annotated[str | None, HeaderParameter(name="If-None-Match")] = None,
    ) -> Response[WebhookOut]:
        hook = await services(request).get_webhook().execute(current_principal(request), webhook_id)
        tag = etag_of(hook.id, hook.version)
        if not_modified(if_none_match, tag):
            unchanged: Response[Any] = Response(b"", status_code=304, headers={"ETag": tag})
            return unchanged
        return webhook_response(hook)

    @patch(
        "/{webhook_id:str}",
        operation_id="updateWebhook",
        summary="Change a webhook (JSON merge patch)",
        description="Needs webhooks:manage. `url`, `events`, `project_id` (null: every "
        "project), `description`, `enabled`; enabling a disabled webhook clears its "
        "`disabled_reason`. `If-Match` with a stale ETag is 412; 409 when another writer changed "
        "it meanwhile and no `If-Match` was sent.",
        opt={
            **documented_body(WebhookPatch, ("application/merge-patch+json", "application/json")),
            **documented_headers({200: ("ETag",)}),
        },
        responses=PROBLEMS(403, 404, 409, 412),
    )
    async def update(
        self,
        request: Request[Any, Any, Any],
        webhook_id: WebhookId,
        if_match: Annotated[str | None, HeaderParameter(name="If-Match")] = None,
    ) -> Response[WebhookOut]:
        body = await decode_body(request, WebhookPatch, MERGE_PATCH_TYPES)
        hook = (
            await services(request)
            .update_webhook()
            .execute(
                current_principal(request),
                webhook_id,
                _changes(body),
                expected_version(if_match, webhook_id),
            )
        )
        return webhook_response(hook)

    @delete(
        "/{webhook_id:str}",
        status_code=HTTP_204_NO_CONTENT,
        operation_id="deleteWebhook",
        summary="Delete a webhook with its deliveries",
        description="Needs webhooks:manage. `If-Match` with a stale ETag is 412.",
        responses=PROBLEMS(403, 404, 412),
    )
    async def delete_webhook(
        self,
        request: Request[Any, Any, Any],
        webhook_id: WebhookId,
        if_match: Annotated[str | None, HeaderParameter(name="If-Match")] = None,
    ) -> None:
        await (
            services(request)
            .delete_webhook()
            .execute(current_principal(request), webhook_id, expected_version(if_match, webhook_id))
        )

    @post(
        "/{webhook_id:str}/rotate-secret",
        status_code=200,
        operation_id="rotateWebhookSecret",
        summary="Give a webhook a new signing secret",
        description="Needs webhooks:manage. The new secret is shown only here; for 24 h "
        "deliveries carry two signatures (new and old secret), so receivers can switch over.",
        responses=PROBLEMS(403, 404, 409),
    )
    async def rotate_secret(
        self, request: Request[Any, Any, Any], webhook_id: WebhookId
    ) -> Response[WebhookSecretOut]:
        secret = (
            await services(request)
            .rotate_webhook_secret()
            .execute(current_principal(request), webhook_id)
        )
        return EncodedJson(_encoder.encode(WebhookSecretOut(secret=secret)))

    @post(
        "/{webhook_id:str}/ping",
        status_code=HTTP_202_ACCEPTED,
        operation_id="pingWebhook",
        summary="Send a webhook.ping event",
        description="Needs webhooks:manage. Answers with the new delivery, attempted by the "
        "worker shortly; 409 when the webhook is disabled.",
        responses=PROBLEMS(403, 404, 409),
    )
    async def ping(
        self, request: Request[Any, Any, Any], webhook_id: WebhookId
    ) -> Response[DeliveryOut]:
        delivery = (
            await services(request).ping_webhook().execute(current_principal(request), webhook_id)
        )
        return EncodedJson(_encoder.encode(delivery_out(delivery)), status_code=HTTP_202_ACCEPTED)

    @get(
        "/{webhook_id:str}/deliveries",
        operation_id="listWebhookDeliveries",
        summary="List a webhook's deliveries, newest first, a page at a time",
        description="Needs webhooks:manage. `status` keeps only `pending`, `succeeded` or "
        "`failed` ones. `next_cursor` is null on the last page; the next page is also in `Link: "
        '<...>; rel="next"`. A malformed or tampered cursor, or one of another list, is 400; a '
        "`limit` outside 1-200 or an unknown `status` is 422.",
        opt={**documented_query(DeliveryListQuery), **documented_headers({200: ("Link",)})},
        responses=PROBLEMS(400, 403, 404, 422),
    )
    async def list_deliveries(
        self,
        request: Request[Any, Any, Any],
        webhook_id: WebhookId,
        status: Annotated[str | None, Parameter(description="pending, succeeded or failed")] = None,
        limit: Annotated[str, Parameter(description="1 to 200 (default 50)")] = str(
            DEFAULT_DELIVERY_PAGE
        ),
        cursor: Annotated[
            str | None, Parameter(description="next_cursor of the previous page")
        ] = None,
    ) -> Response[DeliveryPage]:
        found = services(request)
        if not re.fullmatch(r"[0-9]{1,4}", limit):
            raise Invalid.of("limit", "must be an integer")
        before = (
            delivery_position(found.cursor_codec, webhook_id, cursor)
            if cursor is not None
            else None
        )
        page = await found.list_deliveries().execute(
            current_principal(request), webhook_id, status, before, int(limit)
        )
        next_cursor = (
            delivery_cursor(found.cursor_codec, webhook_id, page.next_position)
            if page.next_position is not None
            else None
        )
        headers = {}
        if next_cursor is not None:
            headers["Link"] = next_page_link(request.scope, next_cursor)
        body = DeliveryPage(items=[delivery_out(d) for d in page.items], next_cursor=next_cursor)
        return EncodedJson(_encoder.encode(body), headers=headers)

    @get(
        "/{webhook_id:str}/deliveries/{delivery_id:str}",
        operation_id="getWebhookDelivery",
        summary="Get a delivery with every attempt",
        description="Needs webhooks:manage. Each attempt: when, how long, the answer's status "
        "(null when none came), the error, and the start of the answer's body.",
        responses=PROBLEMS(403, 404),
    )
    async def get_delivery(
        self, request: Request[Any, Any, Any], webhook_id: WebhookId, delivery_id: DeliveryId
    ) -> Response[DeliveryDetail]:
        delivery, attempts = (
            await services(request)
            .get_delivery()
            .execute(current_principal(request), webhook_id, delivery_id)
        )
        body = DeliveryDetail(
            **_delivery_fields(delivery), attempts=[attempt_out(a) for a in attempts]
        )
        return EncodedJson(_encoder.encode(body))

    @post(
        "/{webhook_id:str}/deliveries/{delivery_id:str}/redeliver",
        status_code=HTTP_202_ACCEPTED,
        operation_id="redeliverWebhookDelivery",
        summary="Attempt a delivery again, with the same webhook-id",
        description="Needs webhooks:manage. The delivery becomes pending and due at once; one "
        "more attempt follows (if it fails, the retry schedule goes on where it was, or the "
        "delivery fails again when it was used up). 409 when the webhook is disabled or an "
        "attempt is running.",
        responses=PROBLEMS(403, 404, 409),
    )
    async def redeliver(
        self, request: Request[Any, Any, Any], webhook_id: WebhookId, delivery_id: DeliveryId
    ) -> Response[DeliveryOut]:
        delivery = (
            await services(request)
            .redeliver()
            .execute(current_principal(request), webhook_id, delivery_id)
        )
        return EncodedJson(_encoder.encode(delivery_out(delivery)), status_code=HTTP_202_ACCEPTED)
