"""An API key's own rate limit (requests per second and burst; NULL: the platform default).

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _schema() -> str | None:
    # `ALTER TABLE ... ADD COLUMN` names its table as a string, which the engine's schema
    # translation does not rewrite (tables, indexes and batch copies it does): name it here.
    translate = op.get_bind().get_execution_options().get("schema_translate_map") or {}
    return translate.get(None)


def upgrade() -> None:
    op.add_column(
        "api_keys", sa.Column("rate_limit_rps", sa.Float, nullable=True), schema=_schema()
    )
    op.add_column(
        "api_keys", sa.Column("rate_limit_burst", sa.Integer, nullable=True), schema=_schema()
    )


def downgrade() -> None:
    op.drop_column("api_keys", "rate_limit_burst", schema=_schema())
    op.drop_column("api_keys", "rate_limit_rps", schema=_schema())
