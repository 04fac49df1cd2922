"""Alembic environment of the auth schema."""

from kubeserve_common.db.migrations import run_env

from kubeserve_auth.repositories.orm import metadata

run_env(metadata)
