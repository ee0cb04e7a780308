"""The `taskhub` command: serve, worker, migrate, check-config, create-user, create-api-key."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any, cast

from app.settings import Settings, SettingsError, load_settings, mask_url
from domain.auth import Scope


def _settings_or_exit() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        print(f"taskhub: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def alembic_config_path() -> Path:
    """alembic.ini: $ALEMBIC_CONFIG, else ./alembic.ini, else the source checkout's."""
    candidates = [os.environ.get("ALEMBIC_CONFIG"), "alembic.ini"]
    candidates.append(str(Path(__file__).resolve().parents[2] / "alembic.ini"))
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate).resolve()
    print(
        "taskhub: alembic.ini not found (set ALEMBIC_CONFIG or run from the project directory)",
        file=sys.stderr,
    )
    raise SystemExit(2)


def migrate(settings: Settings, revision: str = "head") -> None:
    from alembic import command
    from alembic.config import Config

    if settings.DATABASE_URL == "memory://" and settings.MIGRATION_DATABASE_URL is None:
        print("taskhub: DATABASE_URL=memory:// has no schema to migrate", file=sys.stderr)
        return
    # A direct connection when one is given (DATABASE_URL may point at PgBouncer); else the
    # service's own URL, in PgBouncer mode when that is set (the migration is one transaction
    # under a transaction-scoped advisory lock, which transaction pooling keeps together).
    url = settings.MIGRATION_DATABASE_URL or settings.DATABASE_URL
    config = Config(str(alembic_config_path()))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.attributes["pgbouncer"] = (
        settings.MIGRATION_DATABASE_URL is None and settings.DATABASE_PGBOUNCER
    )
    command.upgrade(config, revision)


def _prepare_multiprocess_metrics(settings: Settings, processes: int) -> None:
    """Several workers share metrics through files in one directory; it must start empty, or
    counters left by dead processes from an earlier run would be summed in."""
    directory = settings.PROMETHEUS_MULTIPROC_DIR or os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory:
        if processes == 1:
            return
        directory = tempfile.mkdtemp(prefix="taskhub-metrics-")
    path = Path(directory)
    if path.exists():
        for child in path.iterdir():
            if child.is_file():
                child.unlink()
            else:
                shutil.rmtree(child)
    path.mkdir(parents=True, exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)


def _exit_cleanly(_signum: int, _frame: object) -> None:
    raise SystemExit(0)


def serve(settings: Settings) -> None:
    from functools import partial

    import uvicorn

    from adapters.http.connections import ConnectionLimits, LimitedHttpToolsProtocol

    if settings.is_sqlite:
        # The embedded default migrates itself: one file, one host, nothing to coordinate.
        migrate(settings)
    _prepare_multiprocess_metrics(settings, settings.WORKERS)
    # Each served app first drains on SIGTERM (readiness 503 for SHUTDOWN_DRAIN_SECONDS), then
    # uvicorn stops accepting, finishes in-flight requests and re-raises the signal with the
    # handler it found at start; this one turns that into exit status 0 (an orderly stop).
    signal.signal(signal.SIGTERM, _exit_cleanly)
    # Limits on what one connection may hold, and for how long, before the application sees it.
    limits = ConnectionLimits(
        max_header_bytes=settings.HTTP_MAX_HEADER_BYTES,
        header_timeout=settings.HTTP_HEADER_TIMEOUT,
        body_timeout=settings.HTTP_BODY_TIMEOUT,
        max_connections=settings.HTTP_MAX_CONNECTIONS,
    )
    uvicorn.run(
        "app.asgi:create",
        factory=True,
        host=settings.HOST,
        port=settings.PORT,
        workers=settings.WORKERS,
        http=cast(Any, partial(LimitedHttpToolsProtocol, limits=limits)),
        timeout_keep_alive=settings.HTTP_KEEP_ALIVE_TIMEOUT,
        proxy_headers=True,
        forwarded_allow_ips=settings.FORWARDED_ALLOW_IPS,
        timeout_graceful_shutdown=settings.SHUTDOWN_TIMEOUT_SECONDS,
        access_log=False,
        log_config=None,
        server_header=False,
        lifespan="on",
    )


async def _work(settings: Settings) -> None:
    from adapters.http.probes import start_probe_server
    from app.container import build_container, close_container
    from app.logs import configure_logging

    configure_logging(settings)
    container = build_container(settings)
    worker = container.worker()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, worker.stop)
    probes = None
    try:
        if settings.WORKER_PORT:
            probes = await start_probe_server(settings.HOST, settings.WORKER_PORT, worker.is_alive)
        await worker.run()
    finally:
        if probes is not None:
            probes.close()
            await probes.wait_closed()
        await close_container(container)


def work(settings: Settings) -> None:
    """`taskhub worker`: the job loop alone, with /health/live and /metrics on WORKER_PORT, until
    SIGTERM or SIGINT (then it ends between two job steps and exits with status 0)."""
    if settings.is_sqlite:
        migrate(settings)
    _prepare_multiprocess_metrics(settings, 1)
    asyncio.run(_work(settings))


def _read_password(from_stdin: bool) -> str:
    if from_stdin or not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    password = getpass.getpass("Password: ")
    if getpass.getpass("Repeat password: ") != password:
        print("taskhub: the passwords differ", file=sys.stderr)
        raise SystemExit(1)
    return password


async def _create_user(settings: Settings, email: str, name: str | None, password: str) -> str:
    from app.container import build_container, close_container

    container = build_container(settings)
    try:
        # An operator bootstraps accounts even where public sign-up is off.
        user = await container.register_user(allow_signup=True).execute(email, password, name)
    finally:
        await close_container(container)
    return user.id


async def _create_api_key(
    settings: Settings,
    email: str,
    name: str,
    scopes: list[str],
    expires_at: str | None,
    project_ids: list[str] | None = None,
) -> tuple[str, str]:
    from datetime import datetime

    from app.container import build_container, close_container
    from domain.auth import ALL_SCOPES, Principal, PrincipalKind
    from domain.errors import NotFound

    container = build_container(settings)
    try:
        async with container.uow() as uow:
            user = await uow.users.get_by_email(email)
        if user is None:
            raise NotFound(f"no user with e-mail {email}")
        operator = Principal(
            user_id=user.id,
            kind=PrincipalKind.SESSION,
            scopes=ALL_SCOPES,
            credential_id="cli",
            actor="cli",
        )
        expiry = datetime.fromisoformat(expires_at) if expires_at else None
        issued = await container.issue_api_key().execute(
            operator, name, scopes, expiry, project_ids=project_ids
        )
    finally:
        await close_container(container)
    return issued.key.id, issued.secret


async def _rotate_encryption_key(settings: Settings) -> int:
    from app.container import build_container, close_container

    container = build_container(settings)
    try:
        return await container.reencrypt_webhook_secrets().execute()
    finally:
        await close_container(container)


def _run_use_case[T](coroutine: Coroutine[Any, Any, T]) -> T:
    from domain.errors import DomainError, Invalid

    try:
        return asyncio.run(coroutine)
    except Invalid as exc:
        fields = "; ".join(f"{e.field}: {e.message}" for e in exc.errors) or exc.detail
        print(f"taskhub: {fields}", file=sys.stderr)
    except DomainError as exc:
        print(f"taskhub: {exc.detail}", file=sys.stderr)
    except ValueError as exc:
        print(f"taskhub: {exc}", file=sys.stderr)
    raise SystemExit(1)


def run_migrate(settings: Settings, revision: str, verbose: bool) -> None:
    """`taskhub migrate`: one line on success; on failure one line naming the cause (the whole
    trace with --verbose) and exit status 1. The database URL's password is masked in both."""
    try:
        migrate(settings, revision)
    except Exception as exc:
        url = settings.DATABASE_URL
        if verbose:
            import traceback

            trace = "".join(traceback.format_exception(exc))
            print(trace.replace(url, mask_url(url)).rstrip(), file=sys.stderr)
        cause = (str(exc).strip().splitlines() or [""])[0].replace(url, mask_url(url))
        print(
            f"taskhub: migrate failed: {type(exc).__name__}: {cause}"
            + ("" if verbose else " (--verbose shows the trace)"),
            file=sys.stderr,
        )
        raise SystemExit(1) from None
    if settings.DATABASE_URL != "memory://":
        print(f"taskhub: database migrated to {revision} ({mask_url(settings.DATABASE_URL)})")


def check_config(settings: Settings) -> None:
    print(json.dumps(settings.masked(), indent=2, sort_keys=True, default=str))


def rfc3339_time(value: str) -> str:
    """argparse type of --expires-at: an RFC 3339 time with an offset (kept as given)."""
    from datetime import datetime

    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not an RFC 3339 time with an offset (e.g. 2026-12-31T23:59:00Z)"
        )
    return value


SERVE_DESCRIPTION = """Serve the HTTP API with uvicorn. Takes no options: every setting comes
from the environment (or ./.env), among them HOST (default 127.0.0.1), PORT (default 8000),
WORKERS (default 1) and FORWARDED_ALLOW_IPS. `taskhub check-config` shows the values in effect.
With the default SQLite database it applies the migrations first. Each serving process also
runs the worker loop unless SERVE_WORKER=false."""

WORKER_DESCRIPTION = """Run the background worker loop alone (periodic jobs such as the purge of
expired sessions), for a separate deployment. Takes no options: settings come from the
environment (WORKER_POLL_SECONDS, WORKER_LEASE_SECONDS, WORKER_BATCH_SIZE, ...). Serves
GET /health/live and GET /metrics on HOST:WORKER_PORT (0: none). Any number of workers may run
against one database; SIGTERM or SIGINT stops it between two job steps, exit status 0."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="taskhub",
        description="Taskhub service command line. Settings come from the environment (and an "
        "optional ./.env); `taskhub COMMAND --help` describes each command.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser(
        "serve",
        help="serve HTTP with uvicorn (HOST, PORT, WORKERS from the environment)",
        description=SERVE_DESCRIPTION,
    )
    sub.add_parser(
        "worker",
        help="run the background job loop alone (probes and metrics on WORKER_PORT)",
        description=WORKER_DESCRIPTION,
    )
    m = sub.add_parser(
        "migrate",
        help="apply database migrations (alembic upgrade)",
        description="Apply the database migrations to DATABASE_URL up to REVISION (default: "
        "head). Prints one line on success; on failure one line naming the cause and exit "
        "status 1.",
    )
    m.add_argument("revision", nargs="?", default="head")
    m.add_argument("--verbose", action="store_true", help="show the whole trace on failure")
    sub.add_parser(
        "check-config",
        help="print effective settings, secrets masked; exit 2 if bad",
        description="Validate the settings and print the values in effect as JSON, with secrets "
        "and URL passwords masked. A bad value prints one line naming the variable, exit 2.",
    )
    u = sub.add_parser(
        "create-user",
        help="create a user (password from a prompt or stdin)",
        description="Create a user even when public sign-up is off (ALLOW_SIGNUP=false). The "
        "password is asked for twice on a terminal, or read from the first line of stdin. "
        "Prints the new user's id.",
    )
    u.add_argument("email")
    u.add_argument("--name", default=None)
    u.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    k = sub.add_parser(
        "create-api-key",
        help="issue an API key for a user; prints the secret once",
        description="Issue an API key for the user with this e-mail. The secret is printed once "
        "on stdout (the key's id on stderr); only its keyed hash is stored.",
    )
    k.add_argument("email")
    k.add_argument("--name", required=True)
    k.add_argument(
        "--scope",
        action="append",
        required=True,
        choices=[scope.value for scope in Scope],
        help="repeat for several scopes",
    )
    k.add_argument(
        "--project",
        action="append",
        default=None,
        dest="projects",
        metavar="ID",
        help="restrict the key to this project (repeat for several; the user must be a member)",
    )
    k.add_argument(
        "--expires-at", default=None, type=rfc3339_time, help="RFC 3339 time with offset"
    )
    sub.add_parser(
        "rotate-encryption-key",
        help="re-encrypt stored secrets under the first ENCRYPTION_KEY key",
        description="After putting a new key first in ENCRYPTION_KEY (old ones after it, "
        "comma-separated), re-encrypt every stored secret (webhook signing secrets) under the "
        "new key; then the old keys can be removed. Safe to run again, and while the service "
        "runs. Prints how many webhooks were rewritten.",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    settings = _settings_or_exit()
    if args.command == "serve":
        serve(settings)
    elif args.command == "worker":
        work(settings)
    elif args.command == "migrate":
        run_migrate(settings, args.revision, args.verbose)
    elif args.command == "check-config":
        check_config(settings)
    elif args.command == "create-user":
        password = _read_password(args.password_stdin)
        user_id = _run_use_case(_create_user(settings, args.email, args.name, password))
        print(user_id)
    elif args.command == "create-api-key":
        key_id, secret = _run_use_case(
            _create_api_key(
                settings, args.email, args.name, args.scope, args.expires_at, args.projects
            )
        )
        print(f"id: {key_id}", file=sys.stderr)
        print(secret)
    elif args.command == "rotate-encryption-key":
        count = _run_use_case(_rotate_encryption_key(settings))
        print(f"re-encrypted the secrets of {count} webhooks under the first ENCRYPTION_KEY key")


if __name__ == "__main__":
    main()
