"""Models, versions (with the per-model version counter) and the deployments projection.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op
from kubeserve_common.db.base import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "models",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("framework", sa.String(20), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("version_seq", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_models"),
        sa.UniqueConstraint("owner_id", "name", name="uq_models_owner_name"),
    )
    op.create_index("ix_models_owner_id", "models", ["owner_id"])
    op.create_table(
        "versions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("model_id", sa.Uuid(), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("version_tag", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("artifact_uri", sa.Text(), nullable=False),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("requirements", sa.Text(), nullable=False),
        sa.Column("requirements_uri", sa.Text(), nullable=True),
        sa.Column("failure_stage", sa.String(64), nullable=True),
        sa.Column("failure_reason", sa.Text(), nullable=True),
        sa.Column("signature", sa.JSON(), nullable=True),
        sa.Column("dependency_plan", sa.JSON(), nullable=True),
        sa.Column("predicted_cold_start_ms", sa.Float(), nullable=True),
        sa.Column("wheelhouse_uri", sa.Text(), nullable=True),
        sa.Column("report_uri", sa.Text(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("built_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_versions"),
        sa.ForeignKeyConstraint(
            ["model_id"], ["models.id"], name="fk_versions_model_id_models", ondelete="CASCADE"
        ),
        sa.UniqueConstraint("model_id", "number", name="uq_versions_model_number"),
    )
    op.create_index("ix_versions_owner_model", "versions", ["owner_id", "model_id"])
    op.create_table(
        "deployments",
        sa.Column("deployment_id", sa.Uuid(), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=False),
        sa.Column("model_id", sa.Uuid(), nullable=False),
        sa.Column("version_id", sa.Uuid(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("deleted_at", UTCDateTime(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("deployment_id", name="pk_deployments"),
    )
    op.create_index("ix_deployments_model_id", "deployments", ["model_id"])
    op.create_index("ix_deployments_version_id", "deployments", ["version_id"])


def downgrade() -> None:
    op.drop_table("deployments")
    op.drop_table("versions")
    op.drop_table("models")
