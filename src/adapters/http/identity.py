"""Users, sessions and API keys over HTTP: parse, authorize (guards), one use case, map."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from litestar import Controller, Request, Response
from litestar.di import NamedDependency, Provide
from litestar.exceptions import ClientException
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
from adapters.http.cursors import CursorCodec, next_page_link
from adapters.http.openapi import PROBLEMS, documented_body
from adapters.http.routing import delete, get, post
from adapters.http.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyList,
    ApiKeyOut,
    SessionCreate,
    SessionOut,
    UserCreate,
    UserOut,
)
from domain.api_keys import KEY_LIST_DEFAULT_LIMIT, ApiKey, KeyListPosition
from domain.auth import Principal, Scope
from domain.errors import Invalid
from domain.use_cases.identity import (
    GetCurrentUser,
    IssueApiKey,
    ListApiKeys,
    LogIn,
    LogOut,
    RegisterUser,
    RevokeApiKey,
)
from domain.users import User

PRINCIPAL = {"principal": Provide(current_principal, sync_to_thread=False)}


def user_out(user: User) -> UserOut:
    return UserOut(id=user.id, email=user.email, name=user.name, created_at=user.created_at)


def key_out(key: ApiKey) -> ApiKeyOut:
    return ApiKeyOut(
        id=key.id,
        name=key.name,
        prefix=key.prefix,
        scopes=sorted(s.value for s in key.scopes),
        created_at=key.created_at,
        expires_at=key.expires_at,
        last_used_at=key.last_used_at,
        created_by_key_id=key.created_by_key_id,
    )


_KEY_CURSOR = "api-keys"


def _key_cursor(codec: CursorCodec, position: KeyListPosition) -> str:
    return codec.encode({"k": _KEY_CURSOR, "c": position.created_at.isoformat(), "i": position.id})


def _key_position(codec: CursorCodec, cursor: str) -> KeyListPosition:
    """The position a key-list cursor names; 400 for anything else (a task cursor included)."""
    payload = codec.decode(cursor)
    bad = ClientException(detail="cursor: is not a cursor of this list")
    if not isinstance(payload, dict) or payload.get("k") != _KEY_CURSOR:
        raise bad
    created_at, key_id = payload.get("c"), payload.get("i")
    if not isinstance(created_at, str) or not isinstance(key_id, str):
        raise bad
    try:
        moment = datetime.fromisoformat(created_at)
    except ValueError:
        raise bad from None
    if moment.utcoffset() is None:
        raise bad
    return KeyListPosition(moment, key_id)


class UsersController(Controller):
    path = "/v1/users"
    tags = ["users"]

    @post(
        "/",
        guards=[anonymous_guard],
        status_code=HTTP_201_CREATED,
        summary="Sign up",
        description="409 when the e-mail is taken (case-insensitive); 403 when sign-up is off; "
        "422 on `password` for one of the most common passwords. Sign-ups are limited per "
        "client address (RATE_LIMIT_SIGNUP): 429 with Retry-After beyond it.",
        opt=documented_body(UserCreate),
        responses=PROBLEMS(400, 403, 409, 413, 415, 422, 429),
    )
    async def register(
        self, request: Request[Any, Any, Any], register_user: NamedDependency[RegisterUser]
    ) -> UserOut:
        body = await decode_body(request, UserCreate)
        user = await register_user.execute(
            body.email, body.password, body.name, client_address(request)
        )
        return user_out(user)

    @get(
        "/me",
        guards=[principal_guard],
        dependencies=PRINCIPAL,
        summary="The calling user",
        security=[{"bearer": []}],
        responses=PROBLEMS(401, 429),
    )
    async def me(
        self,
        principal: NamedDependency[Principal],
        get_current_user: NamedDependency[GetCurrentUser],
    ) -> UserOut:
        return user_out(await get_current_user.execute(principal))


class SessionsController(Controller):
    path = "/v1/auth/sessions"
    tags = ["sessions"]

    @post(
        "/",
        guards=[anonymous_guard],
        status_code=HTTP_201_CREATED,
        summary="Log in: trade e-mail and password for a session token",
        description="401 with the same answer for an unknown e-mail and a wrong password. "
        "Attempts are limited per client address and per e-mail and address (RATE_LIMIT_LOGIN), "
        "and per e-mail from all addresses (RATE_LIMIT_LOGIN_EMAIL).",
        opt=documented_body(SessionCreate),
        responses=PROBLEMS(400, 401, 413, 415, 422, 429),
    )
    async def log_in(
        self, request: Request[Any, Any, Any], log_in: NamedDependency[LogIn]
    ) -> SessionOut:
        body = await decode_body(request, SessionCreate)
        result = await log_in.execute(body.email, body.password, client_address(request))
        return SessionOut(
            token=result.token, expires_at=result.expires_at, user=user_out(result.user)
        )

    @delete(
        "/current",
        guards=[principal_guard],
        dependencies=PRINCIPAL,
        status_code=HTTP_204_NO_CONTENT,
        summary="Log out: the session token stops working at once",
        security=[{"bearer": []}],
        responses=PROBLEMS(401, 403, 429),
    )
    async def log_out(
        self, principal: NamedDependency[Principal], log_out: NamedDependency[LogOut]
    ) -> None:
        await log_out.execute(principal)


class ApiKeysController(Controller):
    path = "/v1/api-keys"
    tags = ["api-keys"]
    guards = [principal_guard]
    dependencies = PRINCIPAL
    security = [{"bearer": []}]

    @post(
        "/",
        status_code=HTTP_201_CREATED,
        summary="Issue an API key (the secret is in this answer only)",
        description="Needs a session token or a key with keys:manage. A key can only issue "
        "scopes it holds itself (403 otherwise); an expires_at in the past is 422. A key issued "
        "by a key records it (`created_by_key_id`) and cannot outlive it: when the issuer "
        "expires, an `expires_at` later than the issuer's, or none, is 422 on `expires_at`.",
        opt={SCOPE_OPT: Scope.KEYS_MANAGE, **documented_body(ApiKeyCreate)},
        responses=PROBLEMS(400, 401, 403, 413, 415, 422, 429),
    )
    async def issue(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        issue_api_key: NamedDependency[IssueApiKey],
    ) -> ApiKeyCreated:
        body = await decode_body(request, ApiKeyCreate)
        issued = await issue_api_key.execute(principal, body.name, body.scopes, body.expires_at)
        shown = key_out(issued.key)
        return ApiKeyCreated(
            **{f: getattr(shown, f) for f in shown.__struct_fields__}, key=issued.secret
        )

    @get(
        "/",
        summary="List your API keys (never the secrets), newest first, a page at a time",
        description="Keys that are not revoked (expired ones included), newest first. "
        "`next_cursor` is null on the last page; the next page is also in "
        '`Link: <...>; rel="next"`. A malformed or tampered cursor is 400; a `limit` outside '
        "1-200 is 422.",
        opt={SCOPE_OPT: Scope.KEYS_MANAGE},
        responses=PROBLEMS(400, 401, 403, 422, 429),
    )
    async def list_keys(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        list_api_keys: NamedDependency[ListApiKeys],
        limit: Annotated[str, Parameter(description="1 to 200 (default 50)")] = str(
            KEY_LIST_DEFAULT_LIMIT
        ),
        cursor: Annotated[
            str | None, Parameter(description="next_cursor of the previous page")
        ] = None,
    ) -> Response[ApiKeyList]:
        codec: CursorCodec = request.app.state.cursor_codec
        if not re.fullmatch(r"[0-9]{1,4}", limit):
            raise Invalid.of("limit", "must be an integer")
        after = _key_position(codec, cursor) if cursor is not None else None
        page = await list_api_keys.execute(principal, after, int(limit))
        next_cursor = (
            _key_cursor(codec, page.next_position) if page.next_position is not None else None
        )
        headers = {}
        if next_cursor is not None:
            headers["Link"] = next_page_link(request.scope, next_cursor)
        body = ApiKeyList(items=[key_out(k) for k in page.items], next_cursor=next_cursor)
        return Response(body, headers=headers)

    @delete(
        "/{key_id:str}",
        status_code=HTTP_204_NO_CONTENT,
        summary="Revoke an API key and every key it issued: they stop working at once",
        description="Revokes the key and, transitively, every key issued by it or by a key it "
        "issued, in one step. 404 for an unknown, foreign or already revoked key.",
        opt={SCOPE_OPT: Scope.KEYS_MANAGE},
        responses=PROBLEMS(400, 401, 403, 404, 429),
    )
    async def revoke(
        self,
        principal: NamedDependency[Principal],
        revoke_api_key: NamedDependency[RevokeApiKey],
        key_id: Annotated[str, PathParameter(description="The key's id.")],
    ) -> None:
        await revoke_api_key.execute(principal, key_id)
