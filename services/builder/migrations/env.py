"""Alembic environment of the builder schema."""

from kubeserve_builder.repositories.orm import metadata
from kubeserve_common.db.migrations import run_env

run_env(metadata)
