"""Cursor text: the same as when it was written with json.dumps, and tamper-evident."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest
from litestar.exceptions import ClientException

from adapters.http.cursors import CursorCodec

PAYLOADS: list[dict[str, object]] = [
    {
        "v": 1,
        "s": "-created_at",
        "f": "0123456789abcdef0123456789abcdef",
        "k": "2026-01-02T03:04:05.678900+00:00",
        "i": "01a20125-5808-769c-95da-07901e446490",
    },
    {"v": 1, "s": "priority", "f": "ff", "k": 4, "i": "x"},
    {"v": 1, "s": "due_at", "f": "ff", "k": None, "i": "x"},
    {"v": 1, "s": 'é ü \u2028 \x01 "q" \\', "f": "", "k": -7, "i": "ß"},
]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_the_payload_text_is_what_json_dumps_wrote(payload: dict[str, object]) -> None:
    cursor = CursorCodec(b"secret").encode(payload)
    raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    assert raw[16:] == json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    assert CursorCodec(b"secret").decode(cursor) == payload


def test_a_cursor_signed_with_another_secret_or_changed_is_refused() -> None:
    cursor = CursorCodec(b"secret").encode(PAYLOADS[0])
    with pytest.raises(ClientException):
        CursorCodec(b"other").decode(cursor)
    with pytest.raises(ClientException):
        CursorCodec(b"secret").decode(
            cursor[:-2] + ("A" if cursor[-2] != "A" else "B") + cursor[-1]
        )


def test_the_tag_is_the_hmac_of_the_payload_under_the_derived_key() -> None:
    payload = PAYLOADS[0]
    cursor = CursorCodec(b"secret").encode(payload)
    raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    key = hmac.new(b"secret", b"taskhub cursor v1", hashlib.sha256).digest()
    assert raw[:16] == hmac.new(key, raw[16:], hashlib.sha256).digest()[:16]
    # Two cursors in a row are each tagged from a fresh copy of the keyed state.
    assert CursorCodec(b"secret").encode(payload) == cursor
