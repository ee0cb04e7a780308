#!/usr/bin/env bash
# Installs the third-party tools the test suite runs against the served service, each pinned:
# Redocly CLI, Spectral (for /openapi.json) and the MCP Inspector CLI (for /mcp) from npm (exact
# versions and every dependency from .ci/openapi-tools/package-lock.json) and
# openapi-python-client from PyPI. They go under
# $CI_TOOLS (default ~/.cache/taskhub-ci/tools), where the tests look for them; nothing is
# installed globally. Needs Node.js >= 20.19 with npm, and python3 with venv.
# Used by .ci/run and `make openapi-tools`; prints the four paths it installed.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
CI_TOOLS="${CI_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/taskhub-ci/tools}"
OPENAPI_PYTHON_CLIENT_VERSION=0.29.1

command -v npm >/dev/null 2>&1 || { echo "install-openapi-tools: npm not found (install Node.js >= 20.19 and npm)" >&2; exit 1; }
mkdir -p "$CI_TOOLS/npm"
lock="$here/.ci/openapi-tools/package-lock.json"
if ! cmp -s "$lock" "$CI_TOOLS/npm/package-lock.json" || [ ! -x "$CI_TOOLS/npm/node_modules/.bin/redocly" ] \
    || [ ! -x "$CI_TOOLS/npm/node_modules/.bin/mcp-inspector" ]; then
    cp "$here/.ci/openapi-tools/package.json" "$lock" "$CI_TOOLS/npm/"
    npm ci --prefix "$CI_TOOLS/npm" --no-audit --no-fund --silent >&2
fi

if [ ! -x "$CI_TOOLS/bin/python" ]; then
    python3 -m venv "$CI_TOOLS" >&2
fi
if [ "$("$CI_TOOLS/bin/python" -c 'import importlib.metadata as m; print(m.version("openapi-python-client"))' 2>/dev/null)" != "$OPENAPI_PYTHON_CLIENT_VERSION" ]; then
    "$CI_TOOLS/bin/python" -m pip install --quiet --disable-pip-version-check \
        "openapi-python-client==$OPENAPI_PYTHON_CLIENT_VERSION" >&2
fi

echo "REDOCLY=$CI_TOOLS/npm/node_modules/.bin/redocly"
echo "SPECTRAL=$CI_TOOLS/npm/node_modules/.bin/spectral"
echo "OPENAPI_PYTHON_CLIENT=$CI_TOOLS/bin/openapi-python-client"
echo "MCP_INSPECTOR=$CI_TOOLS/npm/node_modules/.bin/mcp-inspector"
