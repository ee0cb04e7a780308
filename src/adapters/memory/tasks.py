"""In-memory task repository (being written)."""

from typing import Any


class MemoryTaskRepository:
    def __init__(self, table: dict[str, Any]) -> None:
        self._rows = table
