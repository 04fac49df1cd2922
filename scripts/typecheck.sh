#!/usr/bin/env bash
# mypy --strict (configured in the root pyproject.toml, [tool.mypy]) on the packages that pass it:
# STYLE.md rule 8. Extra arguments go to mypy, e.g. `scripts/typecheck.sh --cache-dir /tmp/c`.
set -euo pipefail
cd "$(dirname "$0")/.."

# The one list of checked packages: every package of the workspace.
PACKAGES=(
  kubeserve_common
  kubeserve_runtime
  kubeserve_sdk
  kubeserve_cli
  kubeserve_gateway
  kubeserve_auth
  kubeserve_registry
  kubeserve_builder
  kubeserve_deployer
)

args=()
for p in "${PACKAGES[@]}"; do args+=(-p "$p"); done
# UV as the Makefile sets it (it may be "python3 -m uv").
read -r -a uv <<<"${UV:-uv}"
exec "${uv[@]}" run --no-sync mypy "$@" "${args[@]}"
