"""Users, sessions and API keys over HTTP: parse, authorize (guards), one use case, map."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request
from litestar.di import NamedDependency, Provide
from litestar.params import PathParameter
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from adapters.http.auth import (
    SCOPE_OPT,
    anonymous_guard,
    client_address,
    current_principal,
    principal_guard,
)
from adapters.http.bodies import decode_body
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
from domain.api_keys import ApiKey
from domain.auth import Principal, Scope
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
    )


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
        "scopes it holds itself (403 otherwise); an expires_at in the past is 422.",
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
        summary="List your API keys (never the secrets)",
        opt={SCOPE_OPT: Scope.KEYS_MANAGE},
        responses=PROBLEMS(401, 403, 429),
    )
    async def list_keys(
        self, principal: NamedDependency[Principal], list_api_keys: NamedDependency[ListApiKeys]
    ) -> ApiKeyList:
        return ApiKeyList(items=[key_out(k) for k in await list_api_keys.execute(principal)])

    @delete(
        "/{key_id:str}",
        status_code=HTTP_204_NO_CONTENT,
        summary="Revoke an API key: it stops working at once",
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
