from __future__ import annotations

from pathlib import Path

import pytest

from app.settings import DEV_SESSION_HASH_SECRET, SettingsError, load_settings

STRONG = {
    "SESSION_HASH_SECRET": "s" * 40,
    "SERVICE_AUTH_TOKEN": "t" * 40,
    "ENCRYPTION_KEY": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
}


def test_defaults_are_the_embedded_development_setup() -> None:
    s = load_settings(environ={}, dotenv_path=None)
    assert s.DATABASE_URL == "sqlite+aiosqlite:///./data/taskhub.db"
    assert s.REDIS_URL is None
    assert (s.PORT, s.WORKERS, s.ENVIRONMENT) == (8000, 1, "development")
    assert s.log_format == "console"
    assert s.secret("SESSION_HASH_SECRET") == DEV_SESSION_HASH_SECRET


def test_values_are_typed_from_strings() -> None:
    s = load_settings(
        environ={
            "PORT": "9000",
            "WORKERS": "3",
            "ALLOW_SIGNUP": "false",
            "CORS_ORIGINS": "https://a.example, https://b.example",
        },
        dotenv_path=None,
    )
    assert (s.PORT, s.WORKERS, s.ALLOW_SIGNUP) == (9000, 3, False)
    assert s.CORS_ORIGINS == ("https://a.example", "https://b.example")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PORT", "abc"),
        ("PORT", "70000"),
        ("WORKERS", "0"),
        ("LOG_LEVEL", "LOUD"),
        ("ENVIRONMENT", "staging"),
        ("DATABASE_URL", "postgres://u@h/db"),
        ("RATE_LIMIT_DEFAULT", "ten per minute"),
        ("ENCRYPTION_KEY", "not-a-fernet-key"),
        ("SQLALCHEMY_POOL_SIZE", "-1"),
    ],
)
def test_a_bad_value_names_the_variable_in_one_line(name: str, value: str) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(environ={name: value}, dotenv_path=None)
    message = str(info.value)
    assert name in message
    assert "\n" not in message


def test_production_refuses_missing_secrets_and_names_them() -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(environ={"ENVIRONMENT": "production"}, dotenv_path=None)
    for name in ("SESSION_HASH_SECRET", "SERVICE_AUTH_TOKEN", "ENCRYPTION_KEY"):
        assert name in str(info.value)


def test_production_refuses_the_development_defaults() -> None:
    env = {**STRONG, "ENVIRONMENT": "production", "SESSION_HASH_SECRET": DEV_SESSION_HASH_SECRET}
    with pytest.raises(SettingsError, match="SESSION_HASH_SECRET"):
        load_settings(environ=env, dotenv_path=None)


def test_production_starts_with_real_secrets_and_logs_json() -> None:
    s = load_settings(environ={**STRONG, "ENVIRONMENT": "production"}, dotenv_path=None)
    assert s.is_production
    assert s.log_format == "json"


def test_masked_view_hides_secrets_and_url_passwords() -> None:
    s = load_settings(
        environ={**STRONG, "DATABASE_URL": "postgresql+asyncpg://app:hunter2@db:5432/taskhub"},
        dotenv_path=None,
    )
    shown = repr(s.masked())
    assert "hunter2" not in shown
    assert STRONG["SESSION_HASH_SECRET"] not in shown
    assert "postgresql+asyncpg://app:***@db:5432/taskhub" in shown


def test_dotenv_is_read_and_the_environment_wins(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("PORT=7000\nWORKERS=2\n")
    s = load_settings(environ={"WORKERS": "4"}, dotenv_path=dotenv)
    assert (s.PORT, s.WORKERS) == (7000, 4)


def test_shutdown_defaults_and_the_former_timeout_name() -> None:
    s = load_settings(environ={}, dotenv_path=None)
    assert (s.SHUTDOWN_DRAIN_SECONDS, s.SHUTDOWN_TIMEOUT_SECONDS) == (5.0, 20)
    former = load_settings(environ={"GRACEFUL_SHUTDOWN_TIMEOUT": "7"}, dotenv_path=None)
    assert former.SHUTDOWN_TIMEOUT_SECONDS == 7
    both = load_settings(
        environ={"GRACEFUL_SHUTDOWN_TIMEOUT": "7", "SHUTDOWN_TIMEOUT_SECONDS": "9"},
        dotenv_path=None,
    )
    assert both.SHUTDOWN_TIMEOUT_SECONDS == 9
    with pytest.raises(SettingsError, match="SHUTDOWN_DRAIN_SECONDS"):
        load_settings(environ={"SHUTDOWN_DRAIN_SECONDS": "-1"}, dotenv_path=None)


def test_migration_url_is_checked_and_masked() -> None:
    s = load_settings(
        environ={"MIGRATION_DATABASE_URL": "postgresql+asyncpg://app:hunter2@db:5432/taskhub"},
        dotenv_path=None,
    )
    assert s.masked()["MIGRATION_DATABASE_URL"] == "postgresql+asyncpg://app:***@db:5432/taskhub"
    with pytest.raises(SettingsError, match="MIGRATION_DATABASE_URL"):
        load_settings(environ={"MIGRATION_DATABASE_URL": "postgres://db/x"}, dotenv_path=None)
