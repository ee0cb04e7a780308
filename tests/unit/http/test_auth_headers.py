"""The guard reads Authorization and X-Acting-User straight from the ASGI scope."""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection

from adapters.http.auth import bearer_token, raw_header


def connection(*headers: tuple[bytes, bytes]) -> ASGIConnection[Any, Any, Any, Any]:
    return ASGIConnection({"type": "http", "headers": list(headers)})  # type: ignore[arg-type]


def test_the_first_value_of_a_header_or_none() -> None:
    conn = connection((b"x-acting-user", b"u-1"), (b"x-acting-user", b"u-2"), (b"host", b"h"))
    assert raw_header(conn, b"x-acting-user") == "u-1"
    assert raw_header(conn, b"authorization") is None


def test_bearer_tokens() -> None:
    assert bearer_token(connection((b"authorization", b"Bearer  abc "))) == "abc"
    assert bearer_token(connection((b"authorization", b"bearer abc"))) == "abc"
    assert bearer_token(connection((b"authorization", b"Basic abc"))) is None
    assert bearer_token(connection((b"authorization", b"Bearer "))) is None
    assert bearer_token(connection()) is None
    assert bearer_token(connection((b"authorization", "Bearer é".encode("latin-1")))) == "é"
