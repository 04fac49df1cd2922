"""Alembic environment of the builder schema."""

from kubeserve_common.db.migrations import run_env

from kubeserve_builder.repositories.orm import metadata

run_env(metadata)
