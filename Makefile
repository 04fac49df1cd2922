# The two quick-start commands (README): `make up` runs the platform, `make test` the tests.
# Both install what they need first: uv (from PyPI, if missing), then the locked workspace.
SHELL := /bin/bash
export UV_PYTHON_DOWNLOADS ?= never
UV := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")

.PHONY: install up test lint services dashboard frontend-test sdk-models

install:
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
	$(UV) sync --locked

# The platform on its embedded defaults, with the dashboard at / when Node.js is available.
up: install dashboard
	$(UV) run --no-sync kubeserve up

# Build the dashboard's static export once (the gateway serves frontend/out at /).
dashboard:
	@if [ -f frontend/out/index.html ]; then :; \
	elif command -v npm >/dev/null 2>&1; then \
	  echo "building the dashboard (first run only)"; \
	  (cd frontend && npm ci --no-audit --no-fund --loglevel=error && NEXT_TELEMETRY_DISABLED=1 npm run --silent build); \
	else echo "npm not found: the API runs without the dashboard (see frontend/README.md)"; fi

services:
	./scripts/ensure-services.sh

# The dashboard's checks run before pytest so that pytest's summary is the run's last line.
test: install services
	$(UV) run --no-sync lint-imports
	$(UV) run --no-sync ruff check .
	UV="$(UV)" ./scripts/typecheck.sh
	./scripts/frontend-test.sh
	$(UV) run --no-sync pytest

frontend-test: install
	./scripts/frontend-test.sh

lint: install
	$(UV) run --no-sync lint-imports
	$(UV) run --no-sync ruff check .
	UV="$(UV)" ./scripts/typecheck.sh

# The SDK's typed models (libs/sdk/.../models.py) from the public OpenAPI document, built
# in-process: run after changing a public schema, and commit the result.
sdk-models: install
	$(UV) run --no-sync python scripts/generate_sdk_models.py
