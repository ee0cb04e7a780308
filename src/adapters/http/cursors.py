"""Opaque page cursors: base64url of a JSON payload plus an HMAC-SHA256 tag.

The payload names the last task seen (its sort key and id), the sort, and a fingerprint of sort
and filter, so a cursor only continues the list it was made for; the tag makes it
tamper-evident. A cursor that does not verify is a 400, never a 500 or a wrong page. Running
replicas read each other's cursors: the payload's text must not change within a version.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

import msgspec
from litestar.exceptions import ClientException

from domain.errors import FieldRejected, Invalid
from domain.task_queries import (
    CursorPosition,
    SortValue,
    TaskFilter,
    TaskQuery,
    TaskSort,
    check_position,
)

CURSOR_PAYLOAD_VERSION = 1

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


# --- the payload ---------------------------------------------------------------------------------


def moment_cursor(
    codec: CursorCodec, kind: str, scope: Mapping[str, str | None], at: datetime, item_id: str
) -> str:
    """A cursor of a list ordered by a time then an id (comments, keys, deliveries, the trash):
    `kind` names the list and `scope` what it is a list of, so it continues only that list."""
    return codec.encode({"k": kind, **scope, "c": at.isoformat(), "i": item_id})


def moment_position(
    codec: CursorCodec, kind: str, scope: Mapping[str, str | None], cursor: str
) -> tuple[datetime, str]:
    """The (time, id) a `moment_cursor` of this list names; 400 for anything else."""
    payload = codec.decode(cursor)
    bad = ClientException(detail="cursor: is not a cursor of this list")
    if not isinstance(payload, dict) or payload.get("k") != kind:
        raise bad
    if any(payload.get(key) != value for key, value in scope.items()):
        raise bad
    at, item_id = payload.get("c"), payload.get("i")
    if not isinstance(at, str) or not isinstance(item_id, str):
        raise bad
    try:
        moment = datetime.fromisoformat(at)
    except ValueError:
        raise bad from None
    if moment.utcoffset() is None:
        raise bad
    return moment, item_id


def query_fingerprint(query: TaskQuery) -> str:
    """A digest of the sort and filter (not limit, not position): a cursor made for one query
    is refused by another."""
    return _fingerprint(query.sort, query.filter)


@functools.lru_cache(maxsize=1024)
def _fingerprint(sort: TaskSort, f: TaskFilter) -> str:
    """`query_fingerprint`, kept per (sort, filter): every page of a list repeats it."""
    canonical = [
        sort.value,
        f.status.value if f.status else None,
        f.priority,
        list(f.labels),
        f.due_before.isoformat() if f.due_before else None,
        f.due_after.isoformat() if f.due_after else None,
        f.q,
    ]
    text = json.dumps(canonical, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def cursor_payload(query: TaskQuery, position: CursorPosition) -> dict[str, object]:
    """A JSON-ready dict for the next-page cursor (`CursorCodec` signs and encodes it);
    `position_from_payload` reads it back."""
    value = position.value
    key: object = value.isoformat() if isinstance(value, datetime) else value
    return {
        "v": CURSOR_PAYLOAD_VERSION,
        "s": query.sort.value,
        "f": query_fingerprint(query),
        "k": key,
        "i": position.id,
    }


def position_from_payload(payload: object, query: TaskQuery) -> CursorPosition:
    """The position a cursor payload names, checked against `query` (its sort and filter must
    be the ones the cursor was made for). Raises `Invalid` on field `cursor` otherwise."""
    bad = Invalid.of("cursor", "is malformed or belongs to another query")
    if not isinstance(payload, Mapping) or set(payload) != {"v", "s", "f", "k", "i"}:
        raise bad
    if (
        payload["v"] != CURSOR_PAYLOAD_VERSION
        or payload["s"] != query.sort.value
        or payload["f"] != query_fingerprint(query)
    ):
        raise bad
    task_id, key = payload["i"], payload["k"]
    if not isinstance(task_id, str):
        raise bad
    value: SortValue
    if key is None or isinstance(key, int):
        value = key
    elif isinstance(key, str):
        try:
            value = datetime.fromisoformat(key)
        except ValueError:
            raise bad from None
    else:
        raise bad
    position = CursorPosition(value, task_id)
    try:
        check_position(query.sort, position)
    except FieldRejected:
        raise bad from None
    return position


def request_path(scope: Mapping[str, Any]) -> str:
    """The path as the client sent it, root path included: the scope's path carries the root
    path already (uvicorn, and the app's own root-path layer) or not (older servers)."""
    root, path = str(scope.get("root_path", "")), str(scope["path"])
    return path if path == root or path.startswith(root + "/") else root + path


def next_page_link(scope: Mapping[str, Any], next_cursor: str) -> str:
    """`Link` to the next page: this request's path and parameters in the caller's order (not
    Litestar's parsed query parameters, whose order differs between processes), with `cursor`
    replaced by `next_cursor`."""
    path = request_path(scope)
    query_string = scope["query_string"].decode("latin-1")
    params = [(k, v) for k, v in parse_qsl(query_string, keep_blank_values=True) if k != "cursor"]
    params.append(("cursor", next_cursor))
    return f'<{path}?{urlencode(params)}>; rel="next"'
