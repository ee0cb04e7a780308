#!/bin/sh
# Prints the real path of a Python 3.12 interpreter on this machine (never downloads one).
# Order: $PYTHON_312, python3.12 on PATH (pyenv shims resolved), pyenv's newest 3.12.
set -eu
check() { "$1" -c 'import sys; assert sys.version_info[:2] == (3, 12); print(sys.executable)' 2>/dev/null; }
for c in "${PYTHON_312:-}" python3.12; do
    [ -n "$c" ] || continue
    if out=$(check "$c"); then echo "$out"; exit 0; fi
done
if command -v pyenv >/dev/null 2>&1; then
    for v in $(pyenv versions --bare 2>/dev/null | grep -E '^3\.12(\.[0-9]+)?$' | sort -t. -k3 -n -r); do
        if out=$(check "$(pyenv root)/versions/$v/bin/python3.12"); then echo "$out"; exit 0; fi
    done
fi
echo "find-python: no Python 3.12 found; install one (e.g. 'pyenv install 3.12' or your package manager) or set PYTHON_312=/path/to/python3.12" >&2
exit 1
