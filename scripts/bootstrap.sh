#!/bin/sh
# Prints the path of a working `uv`, installing a pinned one into .bootstrap/ with pip when none
# answers. Used by the Makefile so `make run` and `make test` work on a fresh machine.
set -eu
UV_VERSION="${UV_VERSION:-0.13.9}"
if uv --version >/dev/null 2>&1; then
    command -v uv
    exit 0
fi
here=$(cd "$(dirname "$0")/.." && pwd)
if [ ! -x "$here/.bootstrap/bin/uv" ]; then
    py=""
    for c in python3 python3.12 python3.11 python; do
        if "$c" -c 'import sys; sys.exit(sys.version_info < (3, 8))' >/dev/null 2>&1; then py=$c; break; fi
    done
    [ -n "$py" ] || { echo "bootstrap: no Python 3 found to install uv with" >&2; exit 1; }
    echo "bootstrap: installing uv $UV_VERSION into .bootstrap/ with $py -m pip" >&2
    "$py" -m venv "$here/.bootstrap" >&2
    "$here/.bootstrap/bin/python" -m pip install --quiet --disable-pip-version-check "uv==$UV_VERSION" >&2
fi
echo "$here/.bootstrap/bin/uv"
