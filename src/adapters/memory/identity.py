"""In-memory repositories for users, sessions and API keys (being written)."""

from typing import Any


class MemoryUserRepository:
    def __init__(self, table: dict[str, Any]) -> None:
        self._rows = table


class MemorySessionRepository:
    def __init__(self, table: dict[str, Any]) -> None:
        self._rows = table


class MemoryApiKeyRepository:
    def __init__(self, table: dict[str, Any]) -> None:
        self._rows = table
