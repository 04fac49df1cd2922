"""The gateway publishes no event and consumes only on transient queues (routes, revocations,
the event stream), with no inbox: its outbox and inbox tables were never written. Dropped; the
schema keeps only what it uses, the rate-limit buckets.

Revision ID: 0003
Revises: 0002
"""

from alembic import op
from kubeserve_common.db.migrations import create_messaging_tables, drop_messaging_tables

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    drop_messaging_tables(op)


def downgrade() -> None:
    create_messaging_tables(op)
