"""Settings: the environment (and an optional `.env`) read once into a typed, validated object.

A bad value stops the process with one line naming the variable (`SettingsError`). Production
refuses to start with a missing or development-default secret.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import os
import re
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

from domain.rate_limits import parse_policy
from domain.tasks import DEFAULT_MAX_TASKS_PER_OWNER
from domain.trash import DEFAULT_TRASH_RETENTION_DAYS
from domain.webhooks import parse_duration, parse_schedule

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
NonNegativeFloat = Annotated[float, msgspec.Meta(ge=0)]
# A count the database stores in an `integer` column (32 bits).
PositiveInt32 = Annotated[int, msgspec.Meta(ge=1, le=2**31 - 1)]

# Former names still read when the new one is not set.
_ALIASES = {"SHUTDOWN_TIMEOUT_SECONDS": "GRACEFUL_SHUTDOWN_TIMEOUT"}


class SettingsError(Exception):
    """A setting is missing or wrong; the message is one line that names the variable."""


class Settings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    DATABASE_URL: str = "sqlite+aiosqlite:///./data/taskhub.db"
    REDIS_URL: str | None = None
    REDIS_KEY_PREFIX: str = "taskhub:"
    REDIS_POOL_SIZE: Positive = 32
    REDIS_TIMEOUT: PositiveFloat = 1.0
    REDIS_FAILURE_COOLDOWN: PositiveFloat = 5.0
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
    MIGRATION_DATABASE_URL: str | None = None
    SESSION_HASH_SECRET: str | None = None
    SERVICE_AUTH_TOKEN: str | None = None
    ENCRYPTION_KEY: str | None = None
    ALLOW_SIGNUP: bool = True
    SESSION_TTL: Positive = 86400
    PRINCIPAL_CACHE_TTL: Positive = 60
    RATE_LIMIT_DEFAULT: str = "600/minute"
    RATE_LIMIT_LOGIN: str = "10/minute"
    CONCURRENT_SEARCHES_PER_USER: Positive = 4
    RATE_LIMIT_LOGIN_EMAIL: str = "30/minute"
    RATE_LIMIT_SIGNUP: str = "10/hour"
    MAX_API_KEYS_PER_USER: Positive = 100
    MAX_TASKS_PER_USER: PositiveInt32 = DEFAULT_MAX_TASKS_PER_OWNER
    IDEMPOTENCY_MAX_RESPONSE_BYTES: Positive = 16384
    FORWARDED_ALLOW_IPS: str = "127.0.0.1"
    HTTP_MAX_HEADER_BYTES: Annotated[int, msgspec.Meta(ge=1024)] = 65536
    HTTP_HEADER_TIMEOUT: PositiveFloat = 10.0
    HTTP_BODY_TIMEOUT: PositiveFloat = 15.0
    HTTP_KEEP_ALIVE_TIMEOUT: Positive = 5
    HTTP_MAX_CONNECTIONS: Positive = 1000
    ROOT_PATH: str = ""
    SHUTDOWN_DRAIN_SECONDS: NonNegativeFloat = 5.0
    SHUTDOWN_TIMEOUT_SECONDS: Positive = 20
    HEALTH_CHECK_TIMEOUT: PositiveFloat = 1.0
    PROMETHEUS_MULTIPROC_DIR: str | None = None
    SERVE_WORKER: bool = True
    WORKER_PORT: Annotated[int, msgspec.Meta(ge=0, le=65535)] = 8001
    WORKER_POLL_SECONDS: PositiveFloat = 5.0
    WORKER_LEASE_SECONDS: PositiveFloat = 60.0
    WORKER_BATCH_SIZE: Annotated[int, msgspec.Meta(ge=1, le=10000)] = 500
    SESSION_RETENTION_DAYS: NonNegative = 7
    SESSION_PURGE_INTERVAL_SECONDS: Positive = 3600
    WEBHOOK_ALLOW_HTTP: bool = False
    WEBHOOK_ALLOW_PRIVATE_TARGETS: bool = False
    WEBHOOK_TIMEOUT: PositiveFloat = 15.0
    WEBHOOK_RETRY_SCHEDULE: str = "5s,5m,30m,2h,5h,10h,10h"
    WEBHOOK_DISABLE_AFTER: str = "5d"
    WEBHOOK_CONCURRENCY: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 10
    WEBHOOK_DELIVERY_RETENTION_DAYS: Positive = 30
    TRASH_RETENTION_DAYS: NonNegative = DEFAULT_TRASH_RETENTION_DAYS
    TRASH_PURGE_INTERVAL_SECONDS: Positive = 3600
    EVENT_RETENTION_DAYS: Annotated[int, msgspec.Meta(ge=1, le=3650)] = 30
    EVENT_PURGE_INTERVAL_SECONDS: Positive = 3600
    EVENT_STREAM_POLL_SECONDS: Annotated[float, msgspec.Meta(gt=0, le=1.0)] = 1.0
    EVENT_STREAM_KEEPALIVE_SECONDS: Annotated[float, msgspec.Meta(gt=0, le=15.0)] = 10.0
    PUBLIC_URL: str | None = None
    MCP_ENABLED: bool = True
    MCP_ALLOWED_HOSTS: tuple[str, ...] = ()

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

    @property
    def public_url(self) -> str:
        """Where clients reach the service, root path included (PUBLIC_URL, else HOST:PORT)."""
        if self.PUBLIC_URL is not None:
            base = self.PUBLIC_URL
        else:
            host = "localhost" if self.HOST in ("0.0.0.0", "::", "") else self.HOST  # noqa: S104
            host = f"[{host}]" if ":" in host else host
            base = f"http://{host}:{self.PORT}"
        return base + self.ROOT_PATH

    @property
    def encryption_keys(self) -> list[str]:
        """The Fernet keys of ENCRYPTION_KEY (comma-separated): the first encrypts, all decrypt."""
        return _split_keys(self.secret("ENCRYPTION_KEY"))

    def secret(self, name: str) -> str:
        """A secret's value: the configured one, or in development its development default."""
        value: str | None = getattr(self, name)
        return value if value is not None else _DEV_DEFAULTS[name]

    def masked(self) -> dict[str, Any]:
        """Every effective setting, with secrets and credentials in URLs masked (check-config)."""
        out: dict[str, Any] = msgspec.structs.asdict(self)
        out["LOG_FORMAT"] = self.log_format
        for name in SECRET_NAMES:
            out[name] = "***" if getattr(self, name) else "(development default)"
        if self.SERVICE_AUTH_TOKEN is None:
            out["SERVICE_AUTH_TOKEN"] = "(unset: service calls disabled)"  # noqa: S105
        for name in ("DATABASE_URL", "MIGRATION_DATABASE_URL", "REDIS_URL"):
            if out[name]:
                out[name] = mask_url(out[name])
        return out


_URL_PASSWORD = re.compile(r"(?P<head>[a-z0-9+.-]+://[^:/@]*:)(?P<pw>[^@]*)(?P<tail>@)", re.I)
# A query parameter whose name says it holds a credential (password=, sslpassword=, ...).
_SECRET_PARAMETER = re.compile(
    r"(?P<head>[?&;][^=&;#]*(?:pass|pwd|secret|token|credential)[^=&;#]*=)(?P<value>[^&;#]*)",
    re.I,
)


def mask_url(url: str) -> str:
    """The URL with the password of its user part and of credential parameters as `***`."""
    url = _URL_PASSWORD.sub(r"\g<head>***\g<tail>", url)
    return _SECRET_PARAMETER.sub(r"\g<head>***", url)


def _read_dotenv(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    from dotenv import dotenv_values

    return {k: v for k, v in dotenv_values(path).items() if v is not None}


def _coerce(name: str, raw: str) -> Any:
    """Environment strings to field values: comma lists for tuples, empty string = unset."""
    if raw.strip() == "":
        return None
    if name in ("CORS_ORIGINS", "MCP_ALLOWED_HOSTS"):
        return [part.strip() for part in raw.split(",") if part.strip()]
    return raw.strip()


def load_settings(
    environ: Mapping[str, str] | None = None, dotenv_path: str | Path | None = ".env"
) -> Settings:
    """Read settings from `environ` (default os.environ) over an optional `.env` file."""
    env = dict(_read_dotenv(Path(dotenv_path))) if dotenv_path else {}
    env.update(os.environ if environ is None else environ)
    for name, former in _ALIASES.items():
        if name not in env and former in env:
            env[name] = env[former]
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
    accepted = _accepted_values(name)
    if accepted:
        reason += "; accepted: " + ", ".join(accepted)
    return f"invalid setting {name}={shown}: {reason}"


def _accepted_values(name: str) -> tuple[str, ...]:
    """The values a Literal (enum) setting accepts, in declaration order; () for the others."""
    hints = typing.get_type_hints(Settings)
    values: list[str] = []
    for part in (hints[name], *typing.get_args(hints[name])):
        if typing.get_origin(part) is Literal:
            values.extend(str(v) for v in typing.get_args(part))
    return tuple(values)


def _check_forwarded_allow_ips(value: str) -> None:
    """`*` alone, or a comma list of IP addresses and networks (CIDR, no host bits set): what
    uvicorn reads as addresses. It would take anything else as a literal name that no client
    address ever matches, silently putting every client behind the proxy's address."""
    if value.strip() == "*":
        return
    for entry in (part.strip() for part in value.split(",")):
        try:
            if "/" in entry:
                ipaddress.ip_network(entry)
            else:
                ipaddress.ip_address(entry)
        except ValueError:
            raise SettingsError(
                f"invalid setting FORWARDED_ALLOW_IPS={value!r}: {entry!r} is not an IP "
                "address or a network (CIDR like 10.0.0.0/8); use a comma list of them, or * "
                "alone to trust every proxy"
            ) from None


def _validate(s: Settings) -> None:
    if s.DATABASE_URL != "memory://" and not re.match(
        r"^(sqlite\+aiosqlite|postgresql\+asyncpg)://", s.DATABASE_URL
    ):
        raise SettingsError(
            "invalid setting DATABASE_URL: the scheme must be sqlite+aiosqlite:// or "
            "postgresql+asyncpg:// (e.g. postgresql+asyncpg://user:pass@host:5432/taskhub), "
            "or memory:// (nothing kept; for tests)"
        )
    if s.MIGRATION_DATABASE_URL is not None and not re.match(
        r"^(sqlite\+aiosqlite|postgresql\+asyncpg)://", s.MIGRATION_DATABASE_URL
    ):
        raise SettingsError(
            "invalid setting MIGRATION_DATABASE_URL: the scheme must be postgresql+asyncpg:// "
            "(a direct connection, not through PgBouncer) or sqlite+aiosqlite://"
        )
    if s.REDIS_URL is not None and not re.match(r"^(redis|rediss|unix)://", s.REDIS_URL):
        raise SettingsError(
            "invalid setting REDIS_URL: the scheme must be redis://, rediss:// or unix://"
        )
    if s.ROOT_PATH and not re.fullmatch(r"(/[A-Za-z0-9._~-]+)+", s.ROOT_PATH):
        raise SettingsError(
            f"invalid setting ROOT_PATH={s.ROOT_PATH!r}: a path prefix such as /taskhub "
            "(starts with /, no trailing /, letters, digits and . _ ~ - between slashes)"
        )
    if s.PUBLIC_URL is not None and not re.fullmatch(
        r"https?://[A-Za-z0-9.\-]+(:[0-9]{1,5})?|https?://\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?",
        s.PUBLIC_URL,
    ):
        raise SettingsError(
            f"invalid setting PUBLIC_URL={s.PUBLIC_URL!r}: the scheme, host and port clients "
            "reach the service at, such as https://taskhub.example.com (no path: ROOT_PATH "
            "is added)"
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
    _check_forwarded_allow_ips(s.FORWARDED_ALLOW_IPS)
    if s.WORKER_LEASE_SECONDS * 1000 < 2 * s.DATABASE_STATEMENT_TIMEOUT_MS:
        raise SettingsError(
            f"invalid setting WORKER_LEASE_SECONDS={s.WORKER_LEASE_SECONDS:g}: must be at least "
            "twice DATABASE_STATEMENT_TIMEOUT_MS, so that one job step cannot outlast the lease"
        )
    if s.ENCRYPTION_KEY is not None and not (
        _split_keys(s.ENCRYPTION_KEY)
        and all(_is_fernet_key(k) for k in _split_keys(s.ENCRYPTION_KEY))
    ):
        raise SettingsError(
            "invalid setting ENCRYPTION_KEY: must be 32 url-safe base64-encoded bytes, or "
            "several such keys separated by commas, newest first "
            "(generate one: python -c 'import base64, os; "
            "print(base64.urlsafe_b64encode(os.urandom(32)).decode())')"
        )
    for name, parse in (
        ("WEBHOOK_RETRY_SCHEDULE", parse_schedule),
        ("WEBHOOK_DISABLE_AFTER", parse_duration),
    ):
        try:
            parse(getattr(s, name))
        except ValueError as exc:
            raise SettingsError(f"invalid setting {name}={getattr(s, name)!r}: {exc}") from None
    if s.SESSION_HASH_SECRET is not None and len(s.SESSION_HASH_SECRET.encode()) < 16:
        raise SettingsError("invalid setting SESSION_HASH_SECRET=***: needs at least 16 bytes")
    if s.is_production:
        bad = [
            name
            for name in SECRET_NAMES
            if getattr(s, name) is None
            or getattr(s, name) == _DEV_DEFAULTS[name]
            or (name == "ENCRYPTION_KEY" and DEV_ENCRYPTION_KEY in _split_keys(getattr(s, name)))
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
        _refuse_weak_production_settings(s)


# A generated secret of 32 characters (hex, base64, ...) or 32 bytes has far more distinct symbols
# than this, and no short period; a typed or placeholder one often has neither.
_MIN_DISTINCT_SYMBOLS = 8


def _lacks_variety(value: bytes | str) -> bool:
    if len(set(value)) < _MIN_DISTINCT_SYMBOLS:
        return True
    n = len(value)
    return any(value[p:] == value[:-p] for p in range(1, n // 2 + 1))


def _refuse_weak_production_settings(s: Settings) -> None:
    """Secrets that a guess or a copy-paste could produce, and development-only choices."""
    weak = [
        name
        for name in ("SESSION_HASH_SECRET", "SERVICE_AUTH_TOKEN")
        if _lacks_variety(getattr(s, name) or "")
    ]
    if s.ENCRYPTION_KEY is not None and any(
        _lacks_variety(base64.urlsafe_b64decode(key.encode()))
        for key in _split_keys(s.ENCRYPTION_KEY)
    ):
        weak.append("ENCRYPTION_KEY")
    if weak:
        raise SettingsError(
            "ENVIRONMENT=production refuses secrets that look made by hand (a character or a "
            "short pattern repeated); generate new ones: " + ", ".join(weak)
        )
    if s.SESSION_HASH_SECRET == s.SERVICE_AUTH_TOKEN:
        raise SettingsError(
            "ENVIRONMENT=production needs different values for SESSION_HASH_SECRET and "
            "SERVICE_AUTH_TOKEN (one leaked would give away the other)"
        )
    if s.DATABASE_URL == "memory://":
        raise SettingsError(
            "ENVIRONMENT=production refuses DATABASE_URL=memory:// (nothing is kept and every "
            "worker has its own data); use postgresql+asyncpg:// or sqlite+aiosqlite://"
        )
    if "*" in s.CORS_ORIGINS:
        raise SettingsError(
            "ENVIRONMENT=production refuses CORS_ORIGINS=* (any web page could call the API "
            "from its visitors' browsers); list the allowed origins"
        )


def _split_keys(value: str) -> list[str]:
    return [key.strip() for key in value.split(",") if key.strip()]


def _is_fernet_key(value: str) -> bool:
    try:
        return len(base64.urlsafe_b64decode(value.encode())) == 32
    except (binascii.Error, ValueError):
        return False
