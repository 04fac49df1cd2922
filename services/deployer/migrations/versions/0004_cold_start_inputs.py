"""Versions carry the cold-start estimator's inputs: the trial's load time and the wheelhouse
size, from `VersionBuilt`'s dependency plan (issue 18.1).

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
    translate = op.get_bind().get_execution_options().get("schema_translate_map") or {}
    return translate.get(None)


def upgrade() -> None:
    op.add_column(
        "versions", sa.Column("trial_load_ms", sa.Float(), nullable=True), schema=_schema()
    )
    op.add_column(
        "versions", sa.Column("wheelhouse_bytes", sa.BigInteger(), nullable=True), schema=_schema()
    )


def downgrade() -> None:
    op.drop_column("versions", "wheelhouse_bytes", schema=_schema())
    op.drop_column("versions", "trial_load_ms", schema=_schema())
