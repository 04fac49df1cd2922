"""Alembic environment of the auth schema."""

from kubeserve_auth.repositories.orm import metadata
from kubeserve_common.db.migrations import run_env

run_env(metadata)
