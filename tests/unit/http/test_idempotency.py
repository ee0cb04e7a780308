"""The Idempotency-Key protocol as a route property: any creating POST can declare it, and its
handler stays unaware of it (the task routes' behaviour is covered in test_tasks_api.py)."""

from __future__ import annotations

from itertools import count
from types import SimpleNamespace
from typing import Any

import msgspec
import pytest
from litestar import Litestar, Request
from litestar.connection import ASGIConnection
from litestar.exceptions import ImproperlyConfiguredException
from litestar.handlers.base import BaseRouteHandler
from litestar.testing import TestClient

from adapters.http.auth import STATE_PRINCIPAL
from adapters.http.bodies import decode_body
from adapters.http.openapi import documented_body
from adapters.http.problems import exception_handlers
from adapters.http.routing import post
from adapters.http.services import SERVICES
from adapters.memory.idempotency import MemoryIdempotencyStore
from domain.auth import ALL_SCOPES, Principal, PrincipalKind


class NoteIn(msgspec.Struct):
    text: str


class NoteOut(msgspec.Struct):
    id: int
    text: str


async def as_alice(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    connection.scope["state"][STATE_PRINCIPAL] = Principal(
        "alice", PrincipalKind.SESSION, ALL_SCOPES, "s", "user:alice"
    )


def notes_app() -> tuple[Litestar, list[str]]:
    created: list[str] = []
    ids = count(1)

    @post("/notes", idempotent=True, guards=[as_alice], opt=documented_body(NoteIn))
    async def create_note(request: Request[Any, Any, Any]) -> NoteOut:
        body = await decode_body(request, NoteIn)
        created.append(body.text)
        return NoteOut(id=next(ids), text=body.text)

    app = Litestar([create_note], exception_handlers=exception_handlers())
    app.state[SERVICES] = SimpleNamespace(
        idempotency_store=MemoryIdempotencyStore(), idempotency_max_response_bytes=16384
    )
    return app, created


def test_a_handler_returning_a_value_gets_the_protocol() -> None:
    app, created = notes_app()
    with TestClient(app) as client:
        first = client.post("/notes", json={"text": "a"}, headers={"Idempotency-Key": "n-1"})
        again = client.post("/notes", json={"text": "a"}, headers={"Idempotency-Key": "n-1"})
        other = client.post("/notes", json={"text": "b"}, headers={"Idempotency-Key": "n-1"})
        plain = client.post("/notes", json={"text": "c"})

    assert (first.status_code, again.status_code, other.status_code) == (201, 201, 422)
    assert again.content == first.content
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert plain.status_code == 201
    assert created == ["a", "c"]  # the replay and the refused body ran nothing


def test_the_header_is_documented_on_the_idempotent_route() -> None:
    app, _ = notes_app()
    operation = app.openapi_schema.to_schema()["paths"]["/notes"]["post"]
    assert [(p["name"], p["in"]) for p in operation["parameters"]] == [
        ("Idempotency-Key", "header")
    ]


def test_an_idempotent_route_must_name_its_body_and_take_the_request() -> None:
    async def no_body(request: Request[Any, Any, Any]) -> None: ...

    async def no_request() -> None: ...

    with pytest.raises(ImproperlyConfiguredException):
        post("/x", idempotent=True)(no_body)
    with pytest.raises(ImproperlyConfiguredException):
        post("/x", idempotent=True, opt=documented_body(NoteIn))(no_request)
