"""Strict JSON request bodies: 400 when the bytes are not JSON (or not UTF-8) or nest deeper
than the decoder's recursion limit, 422 naming each field when the JSON does not fit the declared
msgspec type, 415 for another media type.

Handlers decode bodies here rather than through Litestar's `data` parameter, whose lax
conversion accepts "3" for an integer and answers every mismatch with 400.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
from litestar import Request
from litestar.exceptions import ClientException, HTTPException

from domain.errors import FieldError, Invalid

JSON_TYPES = frozenset({"application/json"})
MERGE_PATCH_TYPES = frozenset({"application/json", "application/merge-patch+json"})

_PATH = re.compile(r" - at `\$(?P<path>[^`]*)`$")
_NAMED = re.compile(r"(?:required|unknown) field `(?P<name>[^`]+)`")


class UnsupportedMediaType(HTTPException):
    status_code = 415


def under(path: str, field: str) -> str:
    """`field` of a part of the body at `path`: ("operations[2].data", "title") ->
    "operations[2].data.title"; the part itself ("body") is `path`."""
    if field == "body":
        return path
    return f"{path}{field}" if field.startswith("[") else f"{path}.{field}"


def decode_part[T](raw: bytes, type_: type[T], path: str) -> T:
    """A part of a request body (valid JSON, kept raw by the outer decode) as `type_`: the
    same 422 as a whole body of that type, its fields named under `path`."""
    try:
        return msgspec.json.decode(raw, type=type_)
    except msgspec.ValidationError as exc:
        field, message = _field_of(str(exc))
        field = under(path, field)
        raise Invalid(f"{field}: {message}", [FieldError(field, message)]) from None


def _field_of(message: str) -> tuple[str, str]:
    """msgspec's "Expected `int`, got `str` - at `$.priority`" -> ("priority", "Expected ...")."""
    path, text = "", message
    match = _PATH.search(message)
    if match:
        path, text = match.group("path"), message[: match.start()]
    named = _NAMED.search(text)
    field = path.lstrip(".")
    if named:
        field = f"{field}.{named.group('name')}" if field else named.group("name")
    field = re.sub(r"\.?\[(\d+)\]", r"[\1]", field)
    return field or "body", text


_DECODED = "decoded_body"


async def decode_body[T](
    request: Request[Any, Any, Any],
    type_: type[T],
    media_types: frozenset[str] = JSON_TYPES,
    *,
    keep: bool = False,
) -> T:
    """The body as `type_`. With `keep`, the value is kept for the request, and a later call
    for the same type returns it without decoding again (idempotency decodes before the
    handler does)."""
    kept = request.scope["state"].get(_DECODED)
    if kept is not None and type(kept) is type_:
        return kept
    value = await _decode(request, type_, media_types)
    if keep:
        request.scope["state"][_DECODED] = value
    return value


async def _decode[T](
    request: Request[Any, Any, Any], type_: type[T], media_types: frozenset[str]
) -> T:
    content_type = _content_type(request).split(";", 1)[0].strip().lower()
    if content_type not in media_types:
        raise UnsupportedMediaType(
            detail="Content-Type must be " + " or ".join(sorted(media_types))
        )
    body = await request.body()
    if not body.strip():
        raise ClientException(detail="The request body is empty; a JSON object is expected.")
    try:
        return msgspec.json.decode(body, type=type_)
    except msgspec.ValidationError as exc:
        # The typed decoder stops at the first misfit; a syntax fault later on still makes the
        # whole body "not JSON" (400). Checked only on this error path.
        _require_json(body)
        field, message = _field_of(str(exc))
        raise Invalid(f"{field}: {message}", [FieldError(field, message)]) from None
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise _not_json(exc) from None
    except RecursionError:
        raise _too_deep() from None


def _content_type(request: Request[Any, Any, Any]) -> str:
    """The first Content-Type, read from the ASGI scope (no Headers object for one header)."""
    for name, value in request.scope["headers"]:
        if name == b"content-type":
            return str(value.decode("latin-1"))
    return ""


def _require_json(body: bytes) -> None:
    try:
        msgspec.json.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise _not_json(exc) from None
    except RecursionError:
        raise _too_deep() from None


def _too_deep() -> ClientException:
    # msgspec decodes recursively and stops at the interpreter's recursion limit (about 1,000
    # levels); no request body of this API nests more than a few.
    return ClientException(
        detail="The request body is not acceptable JSON: it is nested too deeply."
    )


def _not_json(exc: Exception) -> ClientException:
    reason = "not UTF-8" if isinstance(exc, UnicodeDecodeError) else str(exc)
    return ClientException(detail=f"The request body is not valid JSON: {reason}")
