#!/bin/sh
# Builds the service image, with the OCI label values taken from pyproject.toml and git.
# Reads PYTHON_IMAGE and BUILD_NETWORK (see `eval "$(scripts/airgap-images.sh)"`) and
# TASKHUB_IMAGE (the tag, default taskhub:latest); further arguments go to `docker build`.
set -eu
cd "$(dirname "$0")/.."
# Debian's engine has no buildx: use the legacy builder there.
docker buildx version >/dev/null 2>&1 || export DOCKER_BUILDKIT=0
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' pyproject.toml | head -n 1)
revision=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
source=$(git remote get-url origin 2>/dev/null || echo unknown)
exec docker build \
    --network "${BUILD_NETWORK:-default}" \
    --build-arg "PYTHON_IMAGE=${PYTHON_IMAGE:-python:3.12-slim}" \
    --build-arg "VERSION=${version:-unknown}" \
    --build-arg "REVISION=$revision" \
    --build-arg "CREATED=$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
    --build-arg "SOURCE=$source" \
    -t "${TASKHUB_IMAGE:-taskhub:latest}" "$@" .
