#!/bin/sh
# Taskhub container entrypoint. With no arguments (or `serve`): empty the Prometheus multiprocess
# directory, wait for the database, apply migrations (RUN_MIGRATIONS=false skips them), then
# exec `taskhub serve` so that SIGTERM reaches the server. Any other command runs instead, e.g.
# `docker run IMAGE taskhub check-config`.
set -eu

if [ "$#" -gt 0 ] && [ "$1" != serve ]; then
    exec "$@"
fi
[ "$#" -gt 0 ] && shift

log() { printf 'entrypoint: %s\n' "$*" >&2; }

if [ -n "${PROMETHEUS_MULTIPROC_DIR:-}" ]; then
    mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
    find "$PROMETHEUS_MULTIPROC_DIR" -mindepth 1 -delete
fi

# Waits until the database in DATABASE_URL accepts TCP connections, at most DB_WAIT_TIMEOUT
# seconds (default 60). SQLite needs no wait.
python - <<'PYTHON'
import os
import socket
import sys
import time
from urllib.parse import urlsplit

url = os.environ.get("DATABASE_URL", "")
if not url.startswith("postgresql"):
    sys.exit(0)
try:
    parts = urlsplit(url)
    host, port = parts.hostname or "localhost", parts.port or 5432
except ValueError as exc:
    sys.exit(f"entrypoint: DATABASE_URL cannot be parsed: {exc}")
timeout = float(os.environ.get("DB_WAIT_TIMEOUT", "60"))
deadline = time.monotonic() + timeout
while True:
    try:
        socket.create_connection((host, port), timeout=2).close()
        break
    except OSError as exc:
        if time.monotonic() >= deadline:
            sys.exit(
                f"entrypoint: database {host}:{port} not reachable after {timeout:g} s ({exc}); "
                "check DATABASE_URL and that the database is running (DB_WAIT_TIMEOUT sets the wait)"
            )
        time.sleep(1)
PYTHON

if [ "${RUN_MIGRATIONS:-true}" = false ]; then
    log "RUN_MIGRATIONS=false: not applying migrations"
else
    log "applying database migrations"
    taskhub migrate
fi

exec taskhub serve "$@"
