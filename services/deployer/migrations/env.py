"""Alembic environment of the deployer schema."""

from kubeserve_common.db.migrations import run_env
from kubeserve_deployer.repositories.orm import metadata

run_env(metadata)
