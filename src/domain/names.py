"""The display-name rule shared by every named thing (users, API keys)."""

from __future__ import annotations

import unicodedata

from domain.errors import Invalid

# Control, format, surrogate, private-use and unassigned characters, and line or paragraph
# separators, are refused in a name.
_FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def display_name(raw: str, max_length: int, *, blank: str = "must not be blank") -> str:
    """`raw` trimmed and NFC-normalised, 1 to `max_length` characters, without control or
    invisible characters; else `Invalid` on the field `name` (`blank` says what to do instead
    of sending a blank one)."""
    name = unicodedata.normalize("NFC", raw.strip())
    if not name:
        raise Invalid.of("name", blank)
    if len(name) > max_length:
        raise Invalid.of("name", f"must be at most {max_length} characters")
    if any(unicodedata.category(ch) in _FORBIDDEN_CATEGORIES for ch in name):
        raise Invalid.of("name", "must not contain control or invisible characters")
    return name
