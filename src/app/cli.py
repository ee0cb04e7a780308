"""The `taskhub` command: serve, migrate, check-config, create-user, create-api-key."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from app.settings import Settings, SettingsError, load_settings


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

    config = Config(str(alembic_config_path()))
    config.set_main_option("sqlalchemy.url", settings.DATABASE_URL.replace("%", "%%"))
    command.upgrade(config, revision)


def _prepare_multiprocess_metrics(settings: Settings) -> None:
    """Several workers share metrics through files (PITFALLS 5): a fresh, empty directory."""
    directory = settings.PROMETHEUS_MULTIPROC_DIR or os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory:
        if settings.WORKERS == 1:
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
    import uvicorn

    _prepare_multiprocess_metrics(settings)
    # uvicorn drains in-flight requests on SIGTERM, then re-raises the signal with the handler it
    # found at start; this one turns that into exit status 0 (an orderly stop, not a crash).
    signal.signal(signal.SIGTERM, _exit_cleanly)
    uvicorn.run(
        "app.asgi:create",
        factory=True,
        host=settings.HOST,
        port=settings.PORT,
        workers=settings.WORKERS,
        proxy_headers=True,
        forwarded_allow_ips=settings.FORWARDED_ALLOW_IPS,
        timeout_graceful_shutdown=settings.GRACEFUL_SHUTDOWN_TIMEOUT,
        access_log=False,
        log_config=None,
        server_header=False,
        lifespan="on",
    )


def check_config(settings: Settings) -> None:
    print(json.dumps(settings.masked(), indent=2, sort_keys=True, default=str))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="taskhub", description="Taskhub service command line.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="serve HTTP with uvicorn (settings from the environment)")
    m = sub.add_parser("migrate", help="apply database migrations (alembic upgrade)")
    m.add_argument("revision", nargs="?", default="head")
    sub.add_parser("check-config", help="print effective settings, secrets masked; exit 2 if bad")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    settings = _settings_or_exit()
    if args.command == "serve":
        serve(settings)
    elif args.command == "migrate":
        migrate(settings, args.revision)
    elif args.command == "check-config":
        check_config(settings)


if __name__ == "__main__":
    main()
