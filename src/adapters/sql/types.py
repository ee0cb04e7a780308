"""Column types that behave the same on PostgreSQL and SQLite.

Each is the natural PostgreSQL type (`uuid`, `timestamptz`, `text[]`) with a SQLite variant, so
the PostgreSQL hot path has no Python-side conversion beyond the driver's own.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Boolean, DateTime, Dialect, String, Text, Uuid
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.types import TypeDecorator, TypeEngine

from domain.tasks import is_task_id


class SqliteUtcText(TypeDecorator[datetime]):
    """An aware datetime stored as fixed-width ISO-8601 UTC text with microseconds
    ("2026-11-22T10:00:00.000000+00:00"), so text order is time order and values round-trip."""

    impl = String(32)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> str | None:  # noqa: ARG002
        if value is None:
            return None
        if value.utcoffset() is None:
            raise ValueError("a naive datetime reached the database; times must be aware")
        return value.astimezone(UTC).isoformat(timespec="microseconds")

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:  # noqa: ARG002
        if value is None:
            return None
        return datetime.fromisoformat(value)


class SqliteJsonList(TypeDecorator[Sequence[str]]):
    """A list of strings stored as a JSON array (queried with `json_each`)."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:  # noqa: ARG002
        if value is None:
            return None
        return json.dumps(list(value), ensure_ascii=False, separators=(",", ":"))

    def process_result_value(self, value: Any, dialect: Dialect) -> list[str] | None:  # noqa: ARG002
        if value is None:
            return None
        result: list[str] = json.loads(value)
        return result


class DriverBoolean(TypeDecorator[bool]):
    """A boolean parameter handed to the driver as a Python bool, with no conversion of
    SQLAlchemy's own (asyncpg takes it for `boolean`, sqlite3 stores it as 0 or 1), so a
    statement using it can run on the raw connection."""

    impl = Boolean
    cache_ok = True

    def bind_processor(self, dialect: Dialect) -> None:  # noqa: ARG002
        return None


DRIVER_BOOLEAN = DriverBoolean()

# A canonical lower-case UUID string: native `uuid` on PostgreSQL, CHAR-like text on SQLite.
# Both order like the lower-case string (the order the task list's tie-breaker relies on).
UUID_TEXT: TypeEngine[str] = Uuid(as_uuid=False).with_variant(String(36), "sqlite")

# An aware UTC datetime: `timestamptz` on PostgreSQL, ISO-8601 text on SQLite.
UTC_DATETIME: TypeEngine[datetime] = DateTime(timezone=True).with_variant(SqliteUtcText(), "sqlite")

# A list of short strings: `text[]` (GIN-indexable `@>`) on PostgreSQL, a JSON array on SQLite.
TEXT_LIST: TypeEngine[Sequence[str]] = ARRAY(Text).with_variant(SqliteJsonList(), "sqlite")


def is_canonical_uuid(value: str) -> bool:
    """True for a canonical UUID string (the domain's rule for every id); anything else can match
    no stored id (and would make PostgreSQL's `uuid` type raise instead)."""
    return is_task_id(value)
