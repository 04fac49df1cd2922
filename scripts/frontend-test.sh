#!/usr/bin/env bash
# The dashboard's checks, as `make test` runs them: install (npm ci), type-check, lint, build the
# static export, unit tests (vitest) and the end-to-end test in Chromium against the embedded
# platform. Installs Debian's Node.js/npm and Chromium when they are missing (root, apt). Needs the
# synced uv workspace (the e2e test runs `uv run --no-sync kubeserve up`).
set -euo pipefail
cd "$(dirname "$0")/../frontend"

export NEXT_TELEMETRY_DISABLED=1
export CI="${CI:-true}"

if ! command -v npm >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "frontend-test: installing Node.js and npm (apt)"
    apt-get install -y -q nodejs npm >/dev/null 2>&1 \
      || { apt-get update -q >/dev/null && apt-get install -y -q nodejs npm >/dev/null; }
  else
    echo "frontend-test: Node.js 18.18+ and npm are required (apt-get install -y nodejs npm)" >&2
    exit 1
  fi
fi

CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
if [ ! -x "$CHROMIUM" ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "frontend-test: installing chromium (apt)"
    apt-get install -y -q chromium >/dev/null 2>&1 \
      || { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; }
  else
    echo "frontend-test: Chromium missing at $CHROMIUM (apt-get install -y chromium)" >&2
    exit 1
  fi
fi

step() { printf '\n== frontend: %s\n' "$*"; }

step "npm ci"
npm ci --no-audit --no-fund --loglevel=error
step "typecheck"
npm run --silent typecheck
step "lint"
npm run --silent lint
step "build"
npm run --silent build
step "unit tests (vitest)"
npm test --silent
step "end-to-end (Chromium, embedded platform)"
CHROMIUM="$CHROMIUM" npm run --silent e2e
echo "frontend: all checks passed (screenshots in frontend/e2e/screenshots/)"
