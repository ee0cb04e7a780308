# Taskhub service image: a builder stage makes /opt/venv with uv, the runtime stage gets only the
# venv, the migrations, alembic.ini and entrypoint.sh. Build with `docker build -t taskhub .`;
# without a registry see docs/deployment.md ("Air-gapped builds").
ARG PYTHON_IMAGE=python:3.12-slim

FROM ${PYTHON_IMAGE} AS builder
ARG UV_VERSION=0.13.9
# binutils only for `strip` below; this stage is thrown away, so its apt versions need no pins.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends binutils \
 && rm -rf /var/lib/apt/lists/* \
 && pip install --no-cache-dir --disable-pip-version-check "uv==${UV_VERSION}"
# No bytecode in the image: it would add about 36 MB (see docs/deployment.md, "Image size").
ENV UV_PROJECT_ENVIRONMENT=/opt/venv \
    UV_PYTHON=/usr/local/bin/python3.12 \
    UV_PYTHON_DOWNLOADS=never \
    UV_LINK_MODE=copy \
    UV_COMPILE_BYTECODE=0 \
    UV_NO_CACHE=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /build
# Dependencies first: this layer is rebuilt only when the lock file changes. Wheels ship debug
# symbols and C/Cython sources the runtime never reads: strip and drop them (about 45 MB). Of
# Swagger UI's files /docs serves only the bundle, the preset, the style sheet and the icons:
# drop its source maps and other builds (about 9.5 MB). Litestar requires polyfactory, which
# requires Faker; the service imports neither, and Faker's locales weigh 11 MB: keep the English ones.
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-editable --no-install-project \
 && find /opt/venv -type f -name '*.so*' -exec strip --strip-unneeded {} + \
 && find /opt/venv -type f \( -name '*.c' -o -name '*.cpp' -o -name '*.h' -o -name '*.pyx' \
      -o -name '*.pxd' -o -name '*.pxi' \) -delete \
 && find /opt/venv -path '*/swagger_ui_bundle/vendor/*' \( -name '*.map' \
      -o -name 'swagger-ui-es-bundle*' -o -name 'swagger-ui.js' \) -delete \
 && find /opt/venv/lib/python3*/site-packages/faker/providers -mindepth 2 -maxdepth 2 -type d \
      ! -name en ! -name en_US ! -name en_GB ! -name __pycache__ -exec rm -rf {} +
# Then the project itself, installed (not linked) into the venv, and a smoke test of the result.
COPY README.md ./
COPY src ./src
RUN uv sync --frozen --no-dev --no-editable \
 && /opt/venv/bin/python -P -c 'import app.asgi; app.asgi.create()' \
 && /opt/venv/bin/taskhub --help >/dev/null

FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --system --gid 10001 taskhub \
 && useradd --system --uid 10001 --gid 10001 --home-dir /app --no-create-home \
      --shell /usr/sbin/nologin taskhub
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOST=0.0.0.0 \
    PORT=8000
WORKDIR /app
COPY --from=builder /opt/venv /opt/venv
COPY alembic.ini entrypoint.sh ./
COPY migrations ./migrations
# The only place the service writes to (the default SQLite database lives in ./data).
RUN install -d -o 10001 -g 10001 -m 0750 /app/data
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('PORT', '8000'), timeout=4)"]
ENTRYPOINT ["/app/entrypoint.sh"]
CMD ["serve"]
# Last, so that new label values (a new revision, a new date) leave every layer above cached.
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
ARG SOURCE=unknown
LABEL org.opencontainers.image.title="taskhub" \
      org.opencontainers.image.description="Taskhub task-management HTTP API (Litestar, SQLAlchemy, PostgreSQL, Redis)" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="Proprietary" \
      org.opencontainers.image.source="${SOURCE}"
