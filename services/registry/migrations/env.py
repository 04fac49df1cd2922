"""Alembic environment of the registry schema."""

from kubeserve_common.db.migrations import run_env
from kubeserve_registry.repositories.orm import metadata

run_env(metadata)
