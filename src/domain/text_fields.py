"""The two kinds of free-text field every resource has, parsed the same way everywhere.

A required text (a task's title, a project's name) is trimmed and must keep 1 to `max_length`
characters; an optional text (a description) is kept as given, or null. Neither may hold NUL,
which PostgreSQL cannot store in text. Offences raise `FieldRejected` naming the field.
"""

from __future__ import annotations

from domain.errors import FieldError, FieldRejected


def _no_nul(name: str, value: str) -> None:
    if "\x00" in value:
        raise FieldRejected(FieldError(name, "must not contain NUL characters"))


def required_text(name: str, value: object, max_length: int) -> str:
    """`value` trimmed: a string of 1 to `max_length` characters after trimming."""
    if value is None:
        raise FieldRejected(FieldError(name, "must not be null"))
    if not isinstance(value, str):
        raise FieldRejected(FieldError(name, "must be a string"))
    text = value.strip()
    if not text:
        raise FieldRejected(FieldError(name, "must not be empty or only whitespace"))
    if len(text) > max_length:
        raise FieldRejected(FieldError(name, f"must be at most {max_length} characters"))
    _no_nul(name, text)
    return text


def optional_text(name: str, value: object, max_length: int) -> str | None:
    """`value` as given (not trimmed), at most `max_length` characters, or None."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise FieldRejected(FieldError(name, "must be a string or null"))
    if len(value) > max_length:
        raise FieldRejected(FieldError(name, f"must be at most {max_length} characters"))
    _no_nul(name, value)
    return value
