"""The calibrated cold-start estimator's state (issue 18): one row per (backend, phase) with its
recent samples, the replica starts already learnt (each once), and each replica's own start id
and measured cold start.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op
from kubeserve_common.db.base import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _schema() -> str | None:
    translate = op.get_bind().get_execution_options().get("schema_translate_map") or {}
    return translate.get(None)


def upgrade() -> None:
    schema = _schema()
    op.create_table(
        "cold_start_estimates",
        sa.Column("backend", sa.String(32), primary_key=True),
        sa.Column("phase", sa.String(32), primary_key=True),
        sa.Column("samples", sa.JSON(), nullable=False),
        sa.Column("observations", sa.Integer(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        schema=schema,
    )
    op.create_table(
        "cold_start_starts",
        sa.Column("start_id", sa.String(64), primary_key=True),
        sa.Column("backend", sa.String(32), nullable=False),
        sa.Column("deployment_id", sa.Uuid(), nullable=False),
        sa.Column("version_id", sa.Uuid(), nullable=True),
        sa.Column("cold_start", sa.JSON(), nullable=False),
        sa.Column("learnt_at", UTCDateTime(), nullable=False),
        schema=schema,
    )
    op.create_index(
        "ix_cold_start_starts_learnt", "cold_start_starts", ["learnt_at"], schema=schema
    )
    op.add_column("replicas", sa.Column("start_id", sa.String(64), nullable=True), schema=schema)
    op.add_column("replicas", sa.Column("cold_start", sa.JSON(), nullable=True), schema=schema)


def downgrade() -> None:
    schema = _schema()
    op.drop_column("replicas", "cold_start", schema=schema)
    op.drop_column("replicas", "start_id", schema=schema)
    op.drop_index("ix_cold_start_starts_learnt", "cold_start_starts", schema=schema)
    op.drop_table("cold_start_starts", schema=schema)
    op.drop_table("cold_start_estimates", schema=schema)
