from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from app.settings import Settings, load_settings

SettingsFactory = Callable[..., Settings]


@pytest.fixture
def make_settings(tmp_path: Path) -> SettingsFactory:
    """Development settings on a throwaway SQLite file; keyword arguments override variables."""

    def make(**overrides: str) -> Settings:
        env = {"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/taskhub.db", "LOG_FORMAT": "json"}
        env.update(overrides)
        return load_settings(environ=env, dotenv_path=None)

    return make
