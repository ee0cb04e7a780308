"""Time-ordered ids (UUIDv7 via uuid-utils) and the system clock."""

from __future__ import annotations

from datetime import UTC, datetime

import uuid_utils


class UuidV7Generator:
    """The `IdGenerator` port: UUID version 7 as its canonical lower-case string."""

    def new_id(self) -> str:
        return str(uuid_utils.uuid7())


class SystemClock:
    """The `Clock` port: the current time, timezone-aware, in UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)
