"""Users, sessions and API keys over HTTP: parse, authorize (guards), one use case, map."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request
from litestar.datastructures import CacheControlHeader
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
from adapters.http.services import services
from domain.api_keys import ApiKey
from domain.auth import Scope
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
        operation_id="createUser",
        summary="Sign up",
        description="409 when the e-mail is taken (case-insensitive); 403 when sign-up is off.",
        opt=documented_body(UserCreate),
        responses=PROBLEMS(403, 409),
    )
    async def register(self, request: Request[Any, Any, Any]) -> UserOut:
        body = await decode_body(request, UserCreate)
        user = await services(request).register_user().execute(body.email, body.password, body.name)
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
        "Attempts are limited per client address and per e-mail (RATE_LIMIT_LOGIN).",
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
        "scopes it holds itself (403 otherwise); an expires_at in the past is 422.",
        opt={SCOPE_OPT: Scope.KEYS_MANAGE, **documented_body(ApiKeyCreate)},
        cache_control=NO_STORE,
    )
    async def issue(self, request: Request[Any, Any, Any]) -> ApiKeyCreated:
        body = await decode_body(request, ApiKeyCreate)
        issued = (
            await services(request)
            .issue_api_key()
            .execute(current_principal(request), body.name, body.scopes, body.expires_at)
        )
        shown = key_out(issued.key)
        return ApiKeyCreated(
            **{f: getattr(shown, f) for f in shown.__struct_fields__}, key=issued.secret
        )

    @get(
        "/",
        operation_id="listApiKeys",
        summary="List your API keys (never the secrets)",
        description="Every key of the calling user, with its prefix but never its secret.",
        opt={SCOPE_OPT: Scope.KEYS_MANAGE},
    )
    async def list_keys(self, request: Request[Any, Any, Any]) -> ApiKeyList:
        keys = await services(request).list_api_keys().execute(current_principal(request))
        return ApiKeyList(items=[key_out(k) for k in keys])

    @delete(
        "/{key_id:str}",
        status_code=HTTP_204_NO_CONTENT,
        operation_id="deleteApiKey",
        summary="Revoke an API key: it stops working at once",
        description="404 for a key that is not the caller's (or does not exist).",
        opt={SCOPE_OPT: Scope.KEYS_MANAGE},
        responses=PROBLEMS(404),
    )
    async def revoke(
        self,
        request: Request[Any, Any, Any],
        key_id: Annotated[str, PathParameter(description="The key's id.")],
    ) -> None:
        await services(request).revoke_api_key().execute(current_principal(request), key_id)
