"""Opaque page cursors: base64url of a JSON payload plus an HMAC-SHA256 tag.

The payload (sort key, id, a fingerprint of sort+filter) comes from the domain; this module only
makes it tamper-evident. A cursor that does not verify is a 400, never a 500 or a wrong page.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode

import msgspec
from litestar.exceptions import ClientException

_TAG_BYTES = 16
_encoder = msgspec.json.Encoder()


class CursorCodec:
    def __init__(self, secret: bytes) -> None:
        # A key of its own, derived from the configured secret (never the secret itself).
        key = hmac.new(secret, b"taskhub cursor v1", hashlib.sha256).digest()
        # Keyed once; each tag starts from a copy (no key set-up per cursor).
        self._keyed = hmac.new(key, digestmod=hashlib.sha256)

    def encode(self, payload: dict[str, object]) -> str:
        # msgspec writes what json.dumps(separators=(",", ":"), ensure_ascii=False) wrote for these
        # payloads (strings, ints, null), so cursors stay the same text; it is just quicker.
        data = _encoder.encode(payload)
        tag = self._tag(data)
        return base64.urlsafe_b64encode(tag + data).rstrip(b"=").decode("ascii")

    def decode(self, cursor: str) -> object:
        """The payload, or ClientException (400) when the cursor is malformed or tampered with."""
        bad = ClientException(detail="cursor: is malformed or was tampered with")
        if not cursor or len(cursor) > 2048:
            raise bad
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        except (ValueError, UnicodeEncodeError):
            raise bad from None
        tag, data = raw[:_TAG_BYTES], raw[_TAG_BYTES:]
        expected = self._tag(data)
        if len(tag) != _TAG_BYTES or not hmac.compare_digest(tag, expected):
            raise bad
        try:
            return json.loads(data)
        except ValueError:
            raise bad from None

    def _tag(self, data: bytes) -> bytes:
        mac = self._keyed.copy()
        mac.update(data)
        return mac.digest()[:_TAG_BYTES]


def next_page_link(scope: Mapping[str, Any], next_cursor: str) -> str:
    """`Link` to the next page: this request's path and parameters, in the caller's order,
    with `cursor` replaced by `next_cursor`."""
    path = str(scope.get("root_path", "")) + str(scope["path"])
    query_string = scope["query_string"].decode("latin-1")
    params = [(k, v) for k, v in parse_qsl(query_string, keep_blank_values=True) if k != "cursor"]
    params.append(("cursor", next_cursor))
    return f'<{path}?{urlencode(params)}>; rel="next"'
