from __future__ import annotations

from pathlib import Path

import pytest

from app.settings import DEV_SESSION_HASH_SECRET, SettingsError, load_settings

STRONG = {
    "SESSION_HASH_SECRET": "kQ3v9ZpX2mL7rT0wYc4N8bHf1sDgJ6eA5uVxIoRqWz",
    "SERVICE_AUTH_TOKEN": "Tn4Gm8Kx1Qw5Ep9Rz3Lb7Yc2Vd6Hs0Fj4Ua8Io1Mk",
    "ENCRYPTION_KEY": "oO5a1Yb9WvR2m-Hc7Kq3Zt8Ld0Xe6Nf4Pg1Ju5Si2Bw=",
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
        ("RATE_LIMIT_LOGIN_EMAIL", "30 a minute"),
        ("RATE_LIMIT_SIGNUP", "0/hour"),
        ("MAX_API_KEYS_PER_USER", "0"),
        ("MAX_TASKS_PER_USER", "0"),
        ("MAX_TASKS_PER_USER", "-3"),
        ("MAX_TASKS_PER_USER", "1.5"),
        ("MAX_TASKS_PER_USER", "lots"),
        ("MAX_TASKS_PER_USER", "2147483648"),  # beyond the database's integer
        ("IDEMPOTENCY_MAX_RESPONSE_BYTES", "-1"),
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


def test_the_task_cap_defaults_to_100000_and_takes_any_32_bit_positive_integer() -> None:
    assert load_settings(environ={}, dotenv_path=None).MAX_TASKS_PER_USER == 100_000
    for text, value in (("1", 1), ("2147483647", 2**31 - 1)):
        settings = load_settings(environ={"MAX_TASKS_PER_USER": text}, dotenv_path=None)
        assert value == settings.MAX_TASKS_PER_USER


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


@pytest.mark.parametrize(
    ("name", "value", "accepted"),
    [
        ("LOG_LEVEL", "info", "DEBUG, INFO, WARNING, ERROR, CRITICAL"),
        ("LOG_FORMAT", "text", "json, console"),
        ("ENVIRONMENT", "staging", "development, production"),
    ],
)
def test_a_bad_enum_value_lists_the_accepted_ones(name: str, value: str, accepted: str) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(environ={name: value}, dotenv_path=None)
    message = str(info.value)
    assert f"{name}={value!r}" in message
    assert f"accepted: {accepted}" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    "value",
    ["127.0.0.1", "*", "10.0.0.0/8, 192.168.1.7", "::1,fd00::/8", "127.0.0.1,10.1.0.0/16"],
)
def test_forwarded_allow_ips_takes_addresses_networks_or_a_star(value: str) -> None:
    s = load_settings(environ={"FORWARDED_ALLOW_IPS": value}, dotenv_path=None)
    assert value == s.FORWARDED_ALLOW_IPS


@pytest.mark.parametrize(
    ("value", "culprit"),
    [
        ("not-an-ip", "not-an-ip"),
        ("10.0.0.0/33", "10.0.0.0/33"),
        ("127.0.0.1, 10.0.0.1/8", "10.0.0.1/8"),  # host bits set: uvicorn would ignore it
        ("127.0.0.1,*", "*"),  # a star only counts on its own
        ("127.0.0.1,,10.0.0.1", "''"),
        ("256.1.1.1", "256.1.1.1"),
    ],
)
def test_a_bad_forwarded_allow_ips_names_the_setting(value: str, culprit: str) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(environ={"FORWARDED_ALLOW_IPS": value}, dotenv_path=None)
    message = str(info.value)
    assert message.startswith("invalid setting FORWARDED_ALLOW_IPS=")
    assert culprit in message
    assert "\n" not in message


def test_the_docs_quote_the_short_session_hash_secret_error() -> None:
    """docs/configuration.md says what a short SESSION_HASH_SECRET does: quote the real error."""
    with pytest.raises(SettingsError) as info:
        load_settings(environ={"SESSION_HASH_SECRET": "too-short"}, dotenv_path=None)
    docs = Path(__file__).resolve().parents[3] / "docs" / "configuration.md"
    text = " ".join(docs.read_text().split())
    assert f"`{info.value}`" in text
    assert "do not catch a shorter value" not in text


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SESSION_HASH_SECRET", "s" * 40),
        ("SERVICE_AUTH_TOKEN", "t" * 32),
        ("SESSION_HASH_SECRET", "abcd" * 10),  # a short pattern repeated
        ("SERVICE_AUTH_TOKEN", "0123456701234567012345670123456701234567"),
        ("ENCRYPTION_KEY", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="),  # 32 zero bytes
        ("ENCRYPTION_KEY", "__________________________________________8="),
    ],
)
def test_production_refuses_a_secret_without_variety(name: str, value: str) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(
            environ={**STRONG, "ENVIRONMENT": "production", name: value}, dotenv_path=None
        )
    message = str(info.value)
    assert name in message
    assert value not in message
    assert "\n" not in message


def test_production_refuses_the_same_value_for_two_secrets() -> None:
    env = {**STRONG, "ENVIRONMENT": "production"}
    env["SERVICE_AUTH_TOKEN"] = env["SESSION_HASH_SECRET"]
    with pytest.raises(SettingsError) as info:
        load_settings(environ=env, dotenv_path=None)
    assert "SESSION_HASH_SECRET" in str(info.value)
    assert "SERVICE_AUTH_TOKEN" in str(info.value)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DATABASE_URL", "memory://"),
        ("CORS_ORIGINS", "*"),
        ("CORS_ORIGINS", "https://app.example.com,*"),
    ],
)
def test_production_refuses_settings_meant_for_development(name: str, value: str) -> None:
    env = {**STRONG, "ENVIRONMENT": "production", name: value}
    with pytest.raises(SettingsError, match=name):
        load_settings(environ=env, dotenv_path=None)
    load_settings(environ={**STRONG, name: value}, dotenv_path=None)  # fine in development


def test_production_accepts_hex_and_base64_secrets() -> None:
    env = {
        **STRONG,
        "ENVIRONMENT": "production",
        "SESSION_HASH_SECRET": "9f86d081884c7d659a2feaa0c55ad015",
        "SERVICE_AUTH_TOKEN": "2c26b46b68ffc68ff99b453c1d304134",
        "CORS_ORIGINS": "https://app.example.com",
    }
    assert load_settings(environ=env, dotenv_path=None).is_production


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+asyncpg://app@db:5432/taskhub?password=hunter2",
        "postgresql+asyncpg://app@db/taskhub?ssl=require&password=hunter2&x=1",
        "postgresql+asyncpg://app:hunter2@db/taskhub?sslpassword=hunter2",
        "postgresql+asyncpg://app:hunter2@db/taskhub?PASSWORD=hunter2",
    ],
)
def test_masked_view_hides_passwords_in_url_parameters(url: str) -> None:
    s = load_settings(environ={"DATABASE_URL": url}, dotenv_path=None)
    shown = repr(s.masked())
    assert "hunter2" not in shown
    assert "db" in shown


def test_masked_view_hides_a_redis_password() -> None:
    for url in ("redis://:hunter2@cache:6379/0", "redis://cache:6379/0?password=hunter2",
                "rediss://user:hunter2@cache:6380"):  # fmt: skip
        shown = repr(load_settings(environ={"REDIS_URL": url}, dotenv_path=None).masked())
        assert "hunter2" not in shown, shown


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


def test_webhook_settings_and_several_encryption_keys() -> None:
    import base64
    import os

    from domain.webhooks import parse_duration, parse_schedule

    defaults = load_settings(environ={}, dotenv_path=None)
    assert (defaults.WEBHOOK_ALLOW_HTTP, defaults.WEBHOOK_ALLOW_PRIVATE_TARGETS) == (False, False)
    assert defaults.WEBHOOK_TIMEOUT == 15.0
    assert len(parse_schedule(defaults.WEBHOOK_RETRY_SCHEDULE)) == 7
    assert parse_duration(defaults.WEBHOOK_DISABLE_AFTER).days == 5
    keys = [base64.urlsafe_b64encode(os.urandom(32)).decode() for _ in range(2)]
    both = load_settings(environ={"ENCRYPTION_KEY": f" {keys[0]} , {keys[1]}"}, dotenv_path=None)
    assert both.encryption_keys == keys
    for name, value in [
        ("WEBHOOK_RETRY_SCHEDULE", "5s,soon"),
        ("WEBHOOK_DISABLE_AFTER", "0d"),
        ("ENCRYPTION_KEY", f"{keys[0]},not-a-key"),
        ("ENCRYPTION_KEY", ","),
    ]:
        with pytest.raises(SettingsError, match=name):
            load_settings(environ={name: value}, dotenv_path=None)


def test_production_refuses_the_development_key_among_several() -> None:
    import base64
    import os

    from app.settings import DEV_ENCRYPTION_KEY

    real = base64.urlsafe_b64encode(os.urandom(32)).decode()
    env = {
        "ENVIRONMENT": "production",
        "DATABASE_URL": "sqlite+aiosqlite:///./x.db",
        "SESSION_HASH_SECRET": base64.urlsafe_b64encode(os.urandom(40)).decode(),
        "SERVICE_AUTH_TOKEN": base64.urlsafe_b64encode(os.urandom(40)).decode(),
        "ENCRYPTION_KEY": f"{real},{DEV_ENCRYPTION_KEY}",
    }
    with pytest.raises(SettingsError, match="ENCRYPTION_KEY"):
        load_settings(environ=env, dotenv_path=None)
    assert load_settings(environ={**env, "ENCRYPTION_KEY": real}, dotenv_path=None)
