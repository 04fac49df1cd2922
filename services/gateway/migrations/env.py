"""Alembic environment of the gateway schema."""

from kubeserve_common.db.migrations import run_env
from kubeserve_gateway.repositories.orm import metadata

run_env(metadata)
