"""Deployments carry their autoscaling settings (issue 12).

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _schema() -> str | None:
    # ALTER TABLE is raw DDL: the connection's schema translation does not reach it.
    translate = op.get_bind().get_execution_options().get("schema_translate_map") or {}
    return translate.get(None)


def upgrade() -> None:
    op.add_column(
        "deployments", sa.Column("autoscaling", sa.JSON(), nullable=True), schema=_schema()
    )


def downgrade() -> None:
    op.drop_column("deployments", "autoscaling", schema=_schema())
