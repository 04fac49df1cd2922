"""The one INSERT that can say ON CONFLICT on both databases a service runs on: PostgreSQL
(distributed) and SQLite (embedded). Both dialects' inserts offer `on_conflict_do_nothing()` and
`on_conflict_do_update()` with the same arguments; this picks the session's."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession


def conflict_insert(session: AsyncSession, table: Any) -> postgresql.Insert | sqlite.Insert:
    """`INSERT INTO table` in the session's dialect (PostgreSQL when unbound)."""
    dialect = session.bind.dialect.name if session.bind else "postgresql"
    return sqlite.insert(table) if dialect == "sqlite" else postgresql.insert(table)
