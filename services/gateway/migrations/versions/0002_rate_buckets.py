"""Token buckets shared by the gateway replicas (rate limits per key, deployment, address).

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rate_buckets",
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("tokens", sa.Float, nullable=False),
        sa.Column("updated", sa.Float, nullable=False),
        sa.Column("granted", sa.Integer, nullable=False, server_default="0"),
    )
    op.create_index("ix_rate_buckets_updated", "rate_buckets", ["updated"])


def downgrade() -> None:
    op.drop_index("ix_rate_buckets_updated", table_name="rate_buckets")
    op.drop_table("rate_buckets")
