"""Users, sessions and API keys over HTTP: parse, authorize (guards), one use case, map."""

from __future__ import annotations

import re
from typing import Annotated, Any

from litestar import Controller, Request, Response
from litestar.datastructures import CacheControlHeader
from litestar.params import Parameter, PathParameter
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from adapters.http.auth import (
    SCOPE_OPT,
    anonymous_guard,
    client_address,
    current_principal,
    principal_guard,
)
from adapters.http.bodies import decode_body
from adapters.http.cursors import CursorCodec, moment_cursor, moment_position, next_page_link
from adapters.http.openapi import PROBLEMS, documented_body, documented_headers, documented_query
from adapters.http.routing import delete, get, post
from adapters.http.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyList,
    ApiKeyOut,
    KeyListQuery,
    SessionCreate,
    SessionOut,
    UserCreate,
    UserOut,
)
from adapters.http.services import services
from domain.api_keys import KEY_LIST_DEFAULT_LIMIT, ApiKey, KeyListPosition
from domain.auth import Scope
from domain.errors import Invalid
from domain.users import User

# Answers that carry a secret (a session token, an API key) must not be kept by any cache.
NO_STORE = CacheControlHeader(no_store=True)


def user_out(user: User) -> UserOut:
    return UserOut(id=user.id, email=user.email, name=user.name, created_at=user.created_at)


def key_out(key: ApiKey) -> ApiKeyOut:
    return ApiKeyOut(
        id=key.id,
        name=key.name,
        prefix=key.prefix,
        scopes=sorted(key.scopes),
        created_at=key.created_at,
        expires_at=key.expires_at,
        last_used_at=key.last_used_at,
        created_by_key_id=key.created_by_key_id,
        project_ids=sorted(key.project_ids) if key.project_ids is not None else None,
    )


_KEY_CURSOR = "api-keys"


def _key_cursor(codec: CursorCodec, position: KeyListPosition) -> str:
    return moment_cursor(codec, _KEY_CURSOR, {}, position.created_at, position.id)


def _key_position(codec: CursorCodec, cursor: str) -> KeyListPosition:
    """The position a key-list cursor names; 400 for anything else (a task cursor included)."""
    return KeyListPosition(*moment_position(codec, _KEY_CURSOR, {}, cursor))


class UsersController(Controller):
    path = "/v1/users"
    tags = ["users"]

    @post(
        "/",
        guards=[anonymous_guard],
        status_code=HTTP_201_CREATED,
        operation_id="createUser",
        summary="Sign up",
        description="409 when the e-mail is taken (case-insensitive); 403 when sign-up is off; "
        "422 on `password` for one of the most common passwords. Sign-ups are limited per "
        "client address (RATE_LIMIT_SIGNUP): 429 with Retry-After beyond it.",
        opt=documented_body(UserCreate),
        responses=PROBLEMS(403, 409),
    )
    async def register(self, request: Request[Any, Any, Any]) -> UserOut:
        body = await decode_body(request, UserCreate)
        user = (
            await services(request)
            .register_user()
            .execute(body.email, body.password, body.name, client_address(request))
        )
        return user_out(user)

    @get(
        "/me",
        guards=[principal_guard],
        operation_id="getCurrentUser",
        summary="The calling user",
        description="The user the credential belongs to (or, for the service token, the "
        "`X-Acting-User`).",
        security=[{"bearer": []}],
    )
    async def me(self, request: Request[Any, Any, Any]) -> UserOut:
        user = await services(request).get_current_user().execute(current_principal(request))
        return user_out(user)


class SessionsController(Controller):
    path = "/v1/auth/sessions"
    tags = ["sessions"]

    @post(
        "/",
        guards=[anonymous_guard],
        status_code=HTTP_201_CREATED,
        operation_id="createSession",
        summary="Log in: trade e-mail and password for a session token",
        description="401 with the same answer for an unknown e-mail and a wrong password. "
        "Attempts are limited per client address and per e-mail and address (RATE_LIMIT_LOGIN), "
        "and per e-mail from all addresses (RATE_LIMIT_LOGIN_EMAIL).",
        opt=documented_body(SessionCreate),
        cache_control=NO_STORE,
        responses=PROBLEMS(401),
    )
    async def log_in(self, request: Request[Any, Any, Any]) -> SessionOut:
        body = await decode_body(request, SessionCreate)
        result = (
            await services(request)
            .log_in()
            .execute(body.email, body.password, client_address(request))
        )
        return SessionOut(
            token=result.token, expires_at=result.expires_at, user=user_out(result.user)
        )

    @delete(
        "/current",
        guards=[principal_guard],
        status_code=HTTP_204_NO_CONTENT,
        operation_id="deleteCurrentSession",
        summary="Log out: the session token stops working at once",
        description="Ends the session whose token authenticates this call; 403 for a "
        "credential that is not a session token.",
        security=[{"bearer": []}],
        responses=PROBLEMS(403),
    )
    async def log_out(self, request: Request[Any, Any, Any]) -> None:
        await services(request).log_out().execute(current_principal(request))


class ApiKeysController(Controller):
    path = "/v1/api-keys"
    tags = ["api-keys"]
    guards = [principal_guard]
    security = [{"bearer": []}]

    @post(
        "/",
        status_code=HTTP_201_CREATED,
        operation_id="createApiKey",
        summary="Issue an API key (the secret is in this answer only)",
        description="Needs a session token or a key with keys:manage. A key can only issue "
        "scopes it holds itself (403 otherwise); an expires_at in the past is 422. A key issued "
        "by a key records it (`created_by_key_id`) and cannot outlive it: when the issuer "
        "expires, an `expires_at` later than the issuer's, or none, is 422 on `expires_at`. "
        "`project_ids` restricts the key to projects you are a member of (422 on "
        "`project_ids[i]` for an unknown or foreign id); a restricted key can only issue keys "
        "restricted to a subset of its own projects (403 otherwise).",
        opt={SCOPE_OPT: Scope.KEYS_MANAGE, **documented_body(ApiKeyCreate)},
        responses=PROBLEMS(409),
        cache_control=NO_STORE,
    )
    async def issue(self, request: Request[Any, Any, Any]) -> ApiKeyCreated:
        body = await decode_body(request, ApiKeyCreate)
        issued = (
            await services(request)
            .issue_api_key()
            .execute(
                current_principal(request),
                body.name,
                body.scopes,
                body.expires_at,
                project_ids=body.project_ids,
            )
        )
        shown = key_out(issued.key)
        return ApiKeyCreated(
            **{f: getattr(shown, f) for f in shown.__struct_fields__}, key=issued.secret
        )

    @get(
        "/",
        operation_id="listApiKeys",
        summary="List your API keys (never the secrets), newest first, a page at a time",
        description="Keys that are not revoked (expired ones included), newest first. "
        "`next_cursor` is null on the last page; the next page is also in "
        '`Link: <...>; rel="next"`. A malformed or tampered cursor is 400; a `limit` outside '
        "1-200 is 422.",
        opt={
            SCOPE_OPT: Scope.KEYS_MANAGE,
            **documented_query(KeyListQuery),
            **documented_headers({200: ("Link",)}),
        },
        responses=PROBLEMS(400, 422),
    )
    async def list_keys(
        self,
        request: Request[Any, Any, Any],
        limit: Annotated[str, Parameter(description="1 to 200 (default 50)")] = str(
            KEY_LIST_DEFAULT_LIMIT
        ),
        cursor: Annotated[
            str | None, Parameter(description="next_cursor of the previous page")
        ] = None,
    ) -> Response[ApiKeyList]:
        found = services(request)
        if not re.fullmatch(r"[0-9]{1,4}", limit):
            raise Invalid.of("limit", "must be an integer")
        after = _key_position(found.cursor_codec, cursor) if cursor is not None else None
        page = await found.list_api_keys().execute(current_principal(request), after, int(limit))
        next_cursor = (
            _key_cursor(found.cursor_codec, page.next_position)
            if page.next_position is not None
            else None
        )
        headers = {}
        if next_cursor is not None:
            headers["Link"] = next_page_link(request.scope, next_cursor)
        body = ApiKeyList(items=[key_out(k) for k in page.items], next_cursor=next_cursor)
        return Response(body, headers=headers)

    @delete(
        "/{key_id:str}",
        status_code=HTTP_204_NO_CONTENT,
        operation_id="deleteApiKey",
        summary="Revoke an API key and every key it issued: they stop working at once",
        description="Revokes the key and, transitively, every key issued by it or by a key it "
        "issued, in one step. 404 for an unknown, foreign or already revoked key.",
        opt={SCOPE_OPT: Scope.KEYS_MANAGE},
        responses=PROBLEMS(404),
    )
    async def revoke(
        self,
        request: Request[Any, Any, Any],
        key_id: Annotated[str, PathParameter(description="The key's id.")],
    ) -> None:
        await services(request).revoke_api_key().execute(current_principal(request), key_id)
