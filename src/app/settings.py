"""Settings: the environment (and an optional `.env`) read once into a typed, validated object.

A bad value stops the process with one line naming the variable (`SettingsError`). Production
refuses to start with a missing or development-default secret.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

from domain.rate_limits import parse_policy

Environment = Literal["development", "production"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
LogFormat = Literal["json", "console"]

# Development-only defaults: good enough to run locally, refused in production.
DEV_SESSION_HASH_SECRET = "dev-only-session-hash-secret-change-me"  # noqa: S105
DEV_SERVICE_AUTH_TOKEN = "dev-only-service-token-change-me"  # noqa: S105
DEV_ENCRYPTION_KEY = base64.urlsafe_b64encode(b"dev-only-encryption-key-32bytes!").decode()

SECRET_NAMES = ("SESSION_HASH_SECRET", "SERVICE_AUTH_TOKEN", "ENCRYPTION_KEY")
_DEV_DEFAULTS = {
    "SESSION_HASH_SECRET": DEV_SESSION_HASH_SECRET,
    "SERVICE_AUTH_TOKEN": DEV_SERVICE_AUTH_TOKEN,
    "ENCRYPTION_KEY": DEV_ENCRYPTION_KEY,
}
_SECRET_MIN_LENGTH = 32

Positive = Annotated[int, msgspec.Meta(ge=1)]
NonNegative = Annotated[int, msgspec.Meta(ge=0)]
PositiveFloat = Annotated[float, msgspec.Meta(gt=0)]


class SettingsError(Exception):
    """A setting is missing or wrong; the message is one line that names the variable."""


class Settings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    DATABASE_URL: str = "sqlite+aiosqlite:///./data/taskhub.db"
    REDIS_URL: str | None = None
    REDIS_KEY_PREFIX: str = "taskhub:"
    REDIS_POOL_SIZE: Positive = 32
    REDIS_TIMEOUT: PositiveFloat = 1.0
    HOST: str = "127.0.0.1"
    PORT: Annotated[int, msgspec.Meta(ge=1, le=65535)] = 8000
    WORKERS: Positive = 1
    ENVIRONMENT: Environment = "development"
    LOG_LEVEL: LogLevel = "INFO"
    LOG_FORMAT: LogFormat | None = None
    CORS_ORIGINS: tuple[str, ...] = ()
    SQLALCHEMY_POOL_SIZE: Positive = 10
    SQLALCHEMY_POOL_OVERFLOW: NonNegative = 0
    SQLALCHEMY_POOL_RECYCLE: Positive = 1800
    SQLALCHEMY_POOL_TIMEOUT: PositiveFloat = 5.0
    DATABASE_STATEMENT_TIMEOUT_MS: Positive = 5000
    DATABASE_POOL_PRE_PING: bool = False
    DATABASE_PGBOUNCER: bool = False
    SESSION_HASH_SECRET: str | None = None
    SERVICE_AUTH_TOKEN: str | None = None
    ENCRYPTION_KEY: str | None = None
    ALLOW_SIGNUP: bool = True
    SESSION_TTL: Positive = 86400
    PRINCIPAL_CACHE_TTL: Positive = 60
    RATE_LIMIT_DEFAULT: str = "600/minute"
    RATE_LIMIT_LOGIN: str = "10/minute"
    RATE_LIMIT_LOGIN_EMAIL: str = "30/minute"
    RATE_LIMIT_SIGNUP: str = "10/hour"
    MAX_API_KEYS_PER_USER: Positive = 100
    IDEMPOTENCY_MAX_RESPONSE_BYTES: Positive = 16384
    FORWARDED_ALLOW_IPS: str = "127.0.0.1"
    GRACEFUL_SHUTDOWN_TIMEOUT: Positive = 20
    HEALTH_CHECK_TIMEOUT: PositiveFloat = 1.0
    PROMETHEUS_MULTIPROC_DIR: str | None = None

    @property
    def is_production(self) -> bool:
        return self.ENVIRONMENT == "production"

    @property
    def log_format(self) -> LogFormat:
        if self.LOG_FORMAT is not None:
            return self.LOG_FORMAT
        return "json" if self.is_production else "console"

    @property
    def is_sqlite(self) -> bool:
        return self.DATABASE_URL.startswith("sqlite")

    def secret(self, name: str) -> str:
        """A secret's value: the configured one, or in development its development default."""
        value: str | None = getattr(self, name)
        return value if value is not None else _DEV_DEFAULTS[name]

    def masked(self) -> dict[str, Any]:
        """Every effective setting, with secrets and credentials in URLs masked (check-config)."""
        out: dict[str, Any] = msgspec.structs.asdict(self)
        for name in SECRET_NAMES:
            out[name] = "***" if getattr(self, name) else "(development default)"
        if self.SERVICE_AUTH_TOKEN is None:
            out["SERVICE_AUTH_TOKEN"] = "(unset: service calls disabled)"  # noqa: S105
        for name in ("DATABASE_URL", "REDIS_URL"):
            if out[name]:
                out[name] = mask_url(out[name])
        return out


_URL_PASSWORD = re.compile(r"(?P<head>[a-z0-9+.-]+://[^:/@]*:)(?P<pw>[^@]*)(?P<tail>@)", re.I)


def mask_url(url: str) -> str:
    return _URL_PASSWORD.sub(r"\g<head>***\g<tail>", url)


def _read_dotenv(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    from dotenv import dotenv_values

    return {k: v for k, v in dotenv_values(path).items() if v is not None}


def _coerce(name: str, raw: str) -> Any:
    """Environment strings to field values: comma lists for tuples, empty string = unset."""
    if raw.strip() == "":
        return None
    if name == "CORS_ORIGINS":
        return [part.strip() for part in raw.split(",") if part.strip()]
    return raw.strip()


def load_settings(
    environ: Mapping[str, str] | None = None, dotenv_path: str | Path | None = ".env"
) -> Settings:
    """Read settings from `environ` (default os.environ) over an optional `.env` file."""
    env = dict(_read_dotenv(Path(dotenv_path))) if dotenv_path else {}
    env.update(os.environ if environ is None else environ)
    raw: dict[str, Any] = {}
    for name in (f.name for f in msgspec.structs.fields(Settings)):
        if name in env:
            value = _coerce(name, env[name])
            if value is not None:
                raw[name] = value
    try:
        settings = msgspec.convert(raw, Settings, strict=False)
    except msgspec.ValidationError as exc:
        raise SettingsError(_one_line(exc, raw)) from None
    _validate(settings)
    return settings


def _one_line(exc: msgspec.ValidationError, raw: Mapping[str, Any]) -> str:
    message = str(exc)
    match = re.search(r"at `\$\.(\w+)", message)
    if not match:
        return f"invalid settings: {message}"
    name = match.group(1)
    reason = message.split(" - at ", 1)[0]
    shown = "***" if name in SECRET_NAMES else repr(raw.get(name))
    return f"invalid setting {name}={shown}: {reason}"


def _validate(s: Settings) -> None:
    if s.DATABASE_URL != "memory://" and not re.match(
        r"^(sqlite\+aiosqlite|postgresql\+asyncpg)://", s.DATABASE_URL
    ):
        raise SettingsError(
            "invalid setting DATABASE_URL: the scheme must be sqlite+aiosqlite:// or "
            "postgresql+asyncpg:// (e.g. postgresql+asyncpg://user:pass@host:5432/taskhub), "
            "or memory:// (nothing kept; for tests)"
        )
    if s.REDIS_URL is not None and not re.match(r"^(redis|rediss|unix)://", s.REDIS_URL):
        raise SettingsError(
            "invalid setting REDIS_URL: the scheme must be redis://, rediss:// or unix://"
        )
    for name in (
        "RATE_LIMIT_DEFAULT",
        "RATE_LIMIT_LOGIN",
        "RATE_LIMIT_LOGIN_EMAIL",
        "RATE_LIMIT_SIGNUP",
    ):
        try:
            parse_policy(name.removeprefix("RATE_LIMIT_").lower(), getattr(s, name))
        except ValueError as exc:
            raise SettingsError(f"invalid setting {name}={getattr(s, name)!r}: {exc}") from None
    if s.ENCRYPTION_KEY is not None and not _is_fernet_key(s.ENCRYPTION_KEY):
        raise SettingsError(
            "invalid setting ENCRYPTION_KEY: must be 32 url-safe base64-encoded bytes "
            "(generate one: python -c 'import base64, os; "
            "print(base64.urlsafe_b64encode(os.urandom(32)).decode())')"
        )
    if s.SESSION_HASH_SECRET is not None and len(s.SESSION_HASH_SECRET.encode()) < 16:
        raise SettingsError("invalid setting SESSION_HASH_SECRET=***: needs at least 16 bytes")
    if s.is_production:
        bad = [
            name
            for name in SECRET_NAMES
            if getattr(s, name) is None or getattr(s, name) == _DEV_DEFAULTS[name]
        ]
        if bad:
            raise SettingsError(
                "ENVIRONMENT=production refuses to start without real secrets: set "
                + ", ".join(bad)
            )
        short = [
            name
            for name in ("SESSION_HASH_SECRET", "SERVICE_AUTH_TOKEN")
            if len(getattr(s, name) or "") < _SECRET_MIN_LENGTH
        ]
        if short:
            raise SettingsError(
                "ENVIRONMENT=production needs secrets of at least "
                f"{_SECRET_MIN_LENGTH} characters: " + ", ".join(short)
            )


def _is_fernet_key(value: str) -> bool:
    try:
        return len(base64.urlsafe_b64decode(value.encode())) == 32
    except (binascii.Error, ValueError):
        return False
