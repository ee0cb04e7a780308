# Taskhub: `make run` serves on :8000 with the embedded default (SQLite + in-memory adapters),
# `make test` runs every gate. Both bootstrap uv and the virtualenv on a fresh machine.
SHELL := /bin/bash
.DEFAULT_GOAL := help

export UV_PYTHON_DOWNLOADS := never
# uv and Python 3.12 are looked up when a recipe first uses them, once each (the eval turns the
# variable into a plain one on first use): `make help` runs neither lookup. The names differ from
# the environment's UV (which `uv run` sets) and PYTHON_312 (read by find-python.sh): make would
# expand a variable that also comes from the environment to export it to every recipe.
UV_BIN = $(eval UV_BIN := $$(shell scripts/bootstrap.sh))$(UV_BIN)
PYTHON_312_BIN = $(eval PYTHON_312_BIN := $$(shell scripts/find-python.sh))$(PYTHON_312_BIN)
RUN = $(UV_BIN) run --frozen --no-sync

.PHONY: help
help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

.venv/.synced: pyproject.toml uv.lock
	@test -n "$(PYTHON_312_BIN)" || { echo "no Python 3.12 found (see scripts/find-python.sh)"; exit 1; }
	$(UV_BIN) sync --frozen --python "$(PYTHON_312_BIN)"
	@touch $@

.PHONY: venv
venv: .venv/.synced ## create/update the virtualenv from uv.lock

.PHONY: run
run: venv ## migrate, then serve on :8000 (SQLite in ./data unless DATABASE_URL is set)
	$(RUN) taskhub migrate
	$(RUN) taskhub serve

.PHONY: migrate
migrate: venv ## apply database migrations (DATABASE_URL)
	$(RUN) taskhub migrate

SHELL_SCRIPTS := scripts/*.sh .ci/run entrypoint.sh

.PHONY: lint
lint: venv ## ruff (lint + format check), mypy (strict on src/, lenient on tests/), import-linter, shellcheck
	$(RUN) ruff check src tests migrations bench
	$(RUN) ruff format --check src tests migrations bench
	$(RUN) mypy
	$(RUN) mypy tests
	$(RUN) lint-imports
	$(RUN) shellcheck $(SHELL_SCRIPTS)

.PHONY: fmt
fmt: venv ## format and auto-fix
	$(RUN) ruff format src tests migrations bench
	$(RUN) ruff check --fix src tests migrations bench

.PHONY: test
test: lint ## every gate, then the whole test suite (unit, integration, container)
	$(RUN) pytest

.PHONY: unit
unit: venv ## unit tests only
	$(RUN) pytest tests/unit

.PHONY: bench
bench: venv ## Taskhub vs a bare Litestar+asyncpg ceiling (throwaway PostgreSQL+Redis, wrk); BENCH_ARGS=--quick
	$(RUN) python -m bench.run $(BENCH_ARGS)

.PHONY: openapi-tools
openapi-tools: ## install the pinned tools the tests use (Redocly, Spectral, openapi-python-client, MCP Inspector)
	scripts/install-openapi-tools.sh

.PHONY: airgap-images
airgap-images: ## build local stand-ins for python:3.12-slim, PostgreSQL, Redis; use: eval "$$(make -s airgap-images)"
	@scripts/airgap-images.sh

.PHONY: docker-build
docker-build: ## build taskhub:latest (PYTHON_IMAGE, BUILD_NETWORK, TASKHUB_IMAGE from the environment)
	scripts/docker-build.sh

.PHONY: docker-test
docker-test: venv ## container acceptance tests only (need a Docker daemon)
	$(RUN) pytest tests/container

.PHONY: ci
ci: ## what CI runs on a fresh machine: engine, tools, stand-ins, then CI=true make test
	.ci/run
