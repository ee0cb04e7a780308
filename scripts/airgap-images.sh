#!/usr/bin/env bash
# Builds local stand-ins for the upstream images Taskhub needs (python:3.12-slim,
# postgres:16-alpine, redis:7-alpine, and edoburu/pgbouncer for compose.yaml's `pgbouncer` profile)
# from Debian packages, for machines whose Docker engine reaches
# no registry. Prints `export NAME=value` lines on stdout (progress goes to stderr), so:
#
#     eval "$(scripts/airgap-images.sh)"
#
# points the Dockerfile (PYTHON_IMAGE), compose.yaml (POSTGRES_IMAGE, REDIS_IMAGE, PGBOUNCER_IMAGE,
# BUILD_NETWORK)
# and testcontainers (TEST_POSTGRES_IMAGE, TEST_REDIS_IMAGE, TESTCONTAINERS_RYUK_DISABLED) at them.
# An upstream image that exists
# locally or can be pulled is used as is and no stand-in is built for it. Images already built are
# reused; AIRGAP_REBUILD=1 rebuilds them, AIRGAP_FORCE=1 builds stand-ins even when pulls work.
#
# Needs: a Docker engine that answers, root (debootstrap), network access to a Debian mirror and,
# for the Python stand-in, a CPython 3.12 on the host (scripts/find-python.sh finds it).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
NS="${AIRGAP_NAMESPACE:-taskhub-airgap}"
SUITE="${AIRGAP_DEBIAN_SUITE:-bookworm}"
MIRROR="${AIRGAP_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
REBUILD="${AIRGAP_REBUILD:-0}"
FORCE="${AIRGAP_FORCE:-0}"

BASE_IMAGE="$NS/debian:$SUITE"
PYTHON_STANDIN="$NS/python:3.12-slim"
POSTGRES_STANDIN="$NS/postgres:15"
REDIS_STANDIN="$NS/redis:7"
PGBOUNCER_STANDIN="$NS/pgbouncer:1"

log() { printf 'airgap-images [%3ds]: %s\n' "$SECONDS" "$*" >&2; }
die() { log "error: $*"; exit 1; }

docker info >/dev/null 2>&1 || die "no Docker daemon answers (start one, or set DOCKER_HOST)"

# The legacy builder is the only one on engines without buildx (Debian's docker.io); its
# deprecation warning is harmless.
if ! docker buildx version >/dev/null 2>&1; then export DOCKER_BUILDKIT=0; fi

image_exists() { docker image inspect "$1" >/dev/null 2>&1; }

# True when the upstream image is usable without a stand-in.
upstream_available() {
    [ "$FORCE" = 1 ] && return 1
    image_exists "$1" && return 0
    log "trying: docker pull $1"
    docker pull --quiet "$1" >/dev/null 2>&1
}

needs_build() { [ "$REBUILD" = 1 ] || ! image_exists "$1"; }

workdir=$(mktemp -d "${TMPDIR:-/tmp}/airgap-images.XXXXXX")
cleanup() { rm -rf "$workdir"; }
trap cleanup EXIT

base_ready=0
build_base() {
    [ "$base_ready" = 1 ] && return
    base_ready=1
    needs_build "$BASE_IMAGE" || { log "reusing $BASE_IMAGE"; return; }
    [ "$(id -u)" = 0 ] || die "debootstrap needs root to build $BASE_IMAGE"
    if ! command -v debootstrap >/dev/null 2>&1; then
        log "installing debootstrap with apt-get"
        apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >&2
    fi
    local rootfs="$workdir/rootfs"
    log "debootstrap --variant=minbase $SUITE from $MIRROR (about a minute)"
    debootstrap --variant=minbase "$SUITE" "$rootfs" "$MIRROR" >"$workdir/debootstrap.log" 2>&1 \
        || { tail -20 "$workdir/debootstrap.log" >&2; die "debootstrap failed"; }
    # No service starts inside image builds; no apt caches in the image.
    printf '#!/bin/sh\nexit 101\n' >"$rootfs/usr/sbin/policy-rc.d"
    chmod 755 "$rootfs/usr/sbin/policy-rc.d"
    printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' \
        >"$rootfs/etc/apt/apt.conf.d/90no-recommends"
    # What Debian's slim images do: no package caches, docs, man pages or translations.
    cat >"$rootfs/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
    cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
    find "$rootfs/usr/share/doc" -mindepth 2 ! -name copyright ! -type d -delete
    find "$rootfs/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
    rm -rf "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* \
        "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/cache/apt/*.bin \
        "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/*.log "$rootfs"/tmp/*
    tar --numeric-owner -C "$rootfs" -c . | docker import \
        -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        -c 'ENV LANG=C.UTF-8' \
        -c 'CMD ["bash"]' \
        - "$BASE_IMAGE" >/dev/null
    rm -rf "$rootfs"
    log "built $BASE_IMAGE"
}

# Image builds run apt-get (and, for the app, pip/uv) inside a container: containers on these
# machines may have no route out, the host network does.
build() {
    local tag=$1 context=$2
    log "docker build -t $tag"
    docker build --network host --build-arg "BASE=$BASE_IMAGE" -t "$tag" "$context" \
        >"$workdir/build.log" 2>&1 || { tail -30 "$workdir/build.log" >&2; die "build of $tag failed"; }
}

build_python() {
    needs_build "$PYTHON_STANDIN" || { log "reusing $PYTHON_STANDIN"; return; }
    local py prefix ctx="$workdir/python"
    py=$("$here/scripts/find-python.sh") || die "a CPython 3.12 on the host is needed for $PYTHON_STANDIN"
    prefix=$("$py" -c 'import sys; print(sys.base_prefix)')
    log "copying CPython from $prefix into the stand-in's /usr/local"
    mkdir -p "$ctx/usr-local"
    # The layout of the official image: /usr/local/{bin,include,lib}; no tests, IDLE, tkinter,
    # bytecode or static library (the official image removes the same things).
    tar -C "$prefix" \
        --exclude='lib/python3.12/test' --exclude='lib/python3.12/idlelib' \
        --exclude='lib/python3.12/tkinter' --exclude='lib/python3.12/turtledemo' \
        --exclude='*/tests' --exclude='*/idle_test' --exclude='__pycache__' \
        --exclude='*.pyc' --exclude='libpython*.a' --exclude='_tkinter*.so' \
        --exclude='lib/python3.12/site-packages/*.pth' \
        -c bin include lib share 2>/dev/null | tar -C "$ctx/usr-local" -x
    # Scripts and build configuration name the old prefix: point them at /usr/local.
    grep -rlI --null -F "$prefix" "$ctx/usr-local/bin" "$ctx/usr-local/lib/pkgconfig" \
        "$ctx/usr-local/lib/python3.12" 2>/dev/null \
        | xargs -0 -r sed -i "s#$prefix#/usr/local#g"
    # The stand-in trusts what this host trusts (an intercepting proxy's CA included).
    cp /etc/ssl/certs/ca-certificates.crt "$ctx/ca-certificates.crt"
    cat >"$ctx/Dockerfile" <<'EOF'
ARG BASE
FROM ${BASE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates netbase tzdata \
      libbz2-1.0 libexpat1 libffi8 liblzma5 libncursesw6 libnsl2 libreadline8 libsqlite3-0 \
      libssl3 libtirpc3 libuuid1 zlib1g \
 && rm -rf /var/lib/apt/lists/*
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY usr-local/ /usr/local/
RUN ldconfig \
 && for n in python pip pydoc idle; do \
      [ -e /usr/local/bin/${n}3 ] && ln -sf ${n}3 /usr/local/bin/$n; done; \
    PYTHONDONTWRITEBYTECODE=1 python3 -c \
      'import ssl, sqlite3, ctypes, lzma, bz2, zlib, uuid, hashlib, readline, decimal' \
 && PYTHONDONTWRITEBYTECODE=1 python3 -m pip --version
ENV LANG=C.UTF-8 PYTHON_VERSION=3.12 \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt PIP_CERT=/etc/ssl/certs/ca-certificates.crt
CMD ["python3"]
EOF
    build "$PYTHON_STANDIN" "$ctx"
}

build_postgres() {
    needs_build "$POSTGRES_STANDIN" || { log "reusing $POSTGRES_STANDIN"; return; }
    local ctx="$workdir/postgres"
    mkdir -p "$ctx"
    postgres_entrypoint >"$ctx/docker-entrypoint.sh"
    cat >"$ctx/Dockerfile" <<'EOF'
ARG BASE
FROM ${BASE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql-common \
 && sed -ri 's/#(create_main_cluster) .*$/\1 = false/' /etc/postgresql-common/createcluster.conf \
 && apt-get install -y --no-install-recommends postgresql-15 \
 && rm -rf /var/lib/apt/lists/* \
 && install -d -o postgres -g postgres -m 2775 /var/run/postgresql \
 && install -d -o postgres -g postgres -m 700 /var/lib/postgresql/data
COPY docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
ENV PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PGDATA=/var/lib/postgresql/data
VOLUME /var/lib/postgresql/data
EXPOSE 5432
STOPSIGNAL SIGINT
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["postgres"]
EOF
    chmod 755 "$ctx/docker-entrypoint.sh"
    build "$POSTGRES_STANDIN" "$ctx"
}

build_redis() {
    needs_build "$REDIS_STANDIN" || { log "reusing $REDIS_STANDIN"; return; }
    local ctx="$workdir/redis"
    mkdir -p "$ctx"
    redis_entrypoint >"$ctx/docker-entrypoint.sh"
    cat >"$ctx/Dockerfile" <<'EOF'
ARG BASE
FROM ${BASE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends redis-server \
 && rm -rf /var/lib/apt/lists/* \
 && install -d -o redis -g redis -m 755 /data
COPY docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
WORKDIR /data
VOLUME /data
EXPOSE 6379
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["redis-server"]
EOF
    chmod 755 "$ctx/docker-entrypoint.sh"
    build "$REDIS_STANDIN" "$ctx"
}

# Debian's PgBouncer (1.18 on bookworm) as an unprivileged user: PgBouncer refuses to run as root,
# and compose.yaml starts it with its own configuration (`pgbouncer /etc/pgbouncer/taskhub.ini`).
build_pgbouncer() {
    needs_build "$PGBOUNCER_STANDIN" || { log "reusing $PGBOUNCER_STANDIN"; return; }
    local ctx="$workdir/pgbouncer"
    mkdir -p "$ctx"
    cat >"$ctx/Dockerfile" <<'EOF'
ARG BASE
FROM ${BASE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends pgbouncer \
 && rm -rf /var/lib/apt/lists/* \
 && { id -u pgbouncer >/dev/null 2>&1 \
      || useradd --system --no-create-home --shell /usr/sbin/nologin pgbouncer; } \
 && pgbouncer --version
USER pgbouncer
EXPOSE 6432
ENTRYPOINT ["pgbouncer"]
CMD ["/etc/pgbouncer/pgbouncer.ini"]
EOF
    build "$PGBOUNCER_STANDIN" "$ctx"
}

# The stand-in's entrypoint: the official image's contract for the parts Taskhub and
# testcontainers use (POSTGRES_USER/PASSWORD/DB, POSTGRES_HOST_AUTH_METHOD, PGDATA; the server
# listens on all addresses only once the database exists). No /docker-entrypoint-initdb.d.
postgres_entrypoint() {
    cat <<'EOF'
#!/bin/sh
set -eu
case "${1:-}" in -*) set -- postgres "$@" ;; esac
[ "${1:-}" = postgres ] || exec "$@"
: "${PGDATA:=/var/lib/postgresql/data}"
if [ "$(id -u)" = 0 ]; then
    install -d -o postgres -g postgres -m 700 "$PGDATA"
    install -d -o postgres -g postgres -m 2775 /var/run/postgresql
    chown -R postgres:postgres "$PGDATA"
    exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    user="${POSTGRES_USER:-postgres}"
    db="${POSTGRES_DB:-$user}"
    method="${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}"
    if [ -z "${POSTGRES_PASSWORD:-}" ] && [ "$method" != trust ]; then
        echo "error: set POSTGRES_PASSWORD (or POSTGRES_HOST_AUTH_METHOD=trust)" >&2
        exit 1
    fi
    pwfile=$(mktemp)
    printf '%s\n' "${POSTGRES_PASSWORD:-}" >"$pwfile"
    initdb -D "$PGDATA" --username="$user" --pwfile="$pwfile" --encoding=UTF8 --no-locale \
        --auth-local=trust --auth-host="$method"
    rm -f "$pwfile"
    printf 'host all all all %s\n' "$method" >>"$PGDATA/pg_hba.conf"
    if [ "$db" != postgres ]; then
        echo "CREATE DATABASE \"$db\" OWNER \"$user\";" | postgres --single -D "$PGDATA" postgres >/dev/null
    fi
    echo "PostgreSQL init process complete; ready for start up."
fi
shift
exec postgres -D "$PGDATA" -c listen_addresses='*' "$@"
EOF
}

# Like the official image: redis-server is the default command, arguments that start with "-"
# go to it, it runs as the redis user, and protected mode is off (the container is the boundary).
redis_entrypoint() {
    cat <<'EOF'
#!/bin/sh
set -eu
case "${1:-}" in -*|*.conf) set -- redis-server "$@" ;; esac
[ "${1:-}" = redis-server ] || exec "$@"
case " $* " in *" --protected-mode "*) ;; *) set -- "$@" --protected-mode no ;; esac
if [ "$(id -u)" = 0 ]; then
    chown -R redis:redis /data 2>/dev/null || true
    exec setpriv --reuid=redis --regid=redis --init-groups "$@"
fi
exec "$@"
EOF
}

python_ref="python:3.12-slim"
postgres_ref="postgres:16-alpine"
redis_ref="redis:7-alpine"
pgbouncer_ref="edoburu/pgbouncer:v1.24.1-p1"
exports=()

upstream_available "$python_ref" || { build_base; build_python; python_ref=$PYTHON_STANDIN; }
upstream_available "$postgres_ref" || { build_base; build_postgres; postgres_ref=$POSTGRES_STANDIN; }
upstream_available "$redis_ref" || { build_base; build_redis; redis_ref=$REDIS_STANDIN; }
upstream_available "$pgbouncer_ref" \
    || { build_base; build_pgbouncer; pgbouncer_ref=$PGBOUNCER_STANDIN; }

if [ "$python_ref" = "$PYTHON_STANDIN" ]; then
    exports+=("PYTHON_IMAGE=$python_ref")
    # The stand-in's builder stage reaches PyPI only through the host's network.
    exports+=("BUILD_NETWORK=host")
fi
if [ "$postgres_ref" = "$POSTGRES_STANDIN" ]; then
    exports+=("POSTGRES_IMAGE=$postgres_ref" "TEST_POSTGRES_IMAGE=$postgres_ref")
fi
if [ "$redis_ref" = "$REDIS_STANDIN" ]; then
    exports+=("REDIS_IMAGE=$redis_ref" "TEST_REDIS_IMAGE=$redis_ref")
fi
if [ "$pgbouncer_ref" = "$PGBOUNCER_STANDIN" ]; then
    exports+=("PGBOUNCER_IMAGE=$pgbouncer_ref")
fi
if [ "$postgres_ref" = "$POSTGRES_STANDIN" ] || [ "$redis_ref" = "$REDIS_STANDIN" ]; then
    # testcontainers' reaper (testcontainers/ryuk) cannot be pulled either; the tests stop their
    # containers themselves.
    exports+=("TESTCONTAINERS_RYUK_DISABLED=true")
fi

if [ ${#exports[@]} -eq 0 ]; then
    log "all upstream images are available; no stand-ins needed"
    echo "# airgap-images: upstream images available, nothing to export"
    exit 0
fi
for e in "${exports[@]}"; do echo "export $e"; done
