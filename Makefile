# The two quick-start commands (README): `make up` runs the platform, `make test` the tests.
# Both install what they need first: uv (from PyPI, if missing), then the locked workspace.
SHELL := /bin/bash
export UV_PYTHON_DOWNLOADS ?= never
UV := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")

.PHONY: install up test lint services

install:
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
	$(UV) sync --locked

up: install
	$(UV) run --no-sync kubeserve up

services:
	./scripts/ensure-services.sh

test: install services
	$(UV) run --no-sync lint-imports
	$(UV) run --no-sync ruff check .
	$(UV) run --no-sync pytest

lint: install
	$(UV) run --no-sync lint-imports
	$(UV) run --no-sync ruff check .
