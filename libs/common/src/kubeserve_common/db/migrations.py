"""Alembic per service schema, on PostgreSQL and SQLite alike.

Each service keeps its revisions in `services/<svc>/migrations/`; its `env.py` is two lines
calling `run_env()`. `upgrade()` is what services call at start (or a migrations Job runs).
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import MetaData, text
from sqlalchemy.engine import Connection

from kubeserve_common.db.base import messaging_metadata
from kubeserve_common.db.session import create_engine, is_sqlite

if TYPE_CHECKING:  # Alembic is imported only when there is something to migrate
    from alembic.config import Config
    from alembic.operations import Operations

VERSION_TABLE = "alembic_version"
_REVISION = re.compile(r"^revision\s*(?::\s*str\s*)?=\s*[\"']([^\"']+)[\"']", re.MULTILINE)
_DOWN = re.compile(r"^down_revision\s*(?::[^=]+)?=\s*(None|[\"']([^\"']+)[\"'])\s*$", re.MULTILINE)


def linear_head(script_location: Path) -> str | None:
    """The head of a linear chain of revisions, read from the files without Alembic; None
    when the files do not make one plain chain (Alembic then decides)."""
    parents: dict[str, str | None] = {}
    for path in (script_location / "versions").glob("*.py"):
        source = path.read_text()
        revision, down = _REVISION.search(source), _DOWN.search(source)
        if revision is None or down is None:
            return None
        parents[revision.group(1)] = down.group(2)
    children = {p for p in parents.values() if p is not None}
    heads = [r for r in parents if r not in children]
    roots = [r for r, p in parents.items() if p is None]
    if len(heads) != 1 or len(roots) != 1 or len(children) != len(parents) - 1:
        return None
    return heads[0]


async def at_head(script_location: Path, database_url: str, schema: str) -> bool:
    """Whether the database already has the chain's head (a restart): nothing to migrate."""
    head = linear_head(script_location)
    if head is None:
        return False
    engine = create_engine(database_url, schema, pool_size=1)
    try:
        async with engine.connect() as conn:
            # `schema` was checked against a strict pattern by create_engine above.
            query = text(f"SELECT version_num FROM {schema}.{VERSION_TABLE}")  # noqa: S608
            rows = await conn.execute(query)
            return [row[0] for row in rows] == [head]
    except Exception:  # no version table yet (a fresh database), or unreadable: migrate
        return False
    finally:
        await engine.dispose()


def _config(script_location: Path, database_url: str, schema: str) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(script_location))
    cfg.attributes["database_url"] = database_url
    cfg.attributes["schema"] = schema
    return cfg


def upgrade_sync(
    script_location: Path, database_url: str, schema: str, revision: str = "head"
) -> None:
    from alembic import command

    command.upgrade(_config(script_location, database_url, schema), revision)


async def upgrade(
    script_location: Path, database_url: str, schema: str, revision: str = "head"
) -> None:
    """Apply migrations up to `revision` (Alembic is synchronous: run it on a worker thread,
    where `run_env()` drives the async engine on a loop of its own). A database already at
    the head is left alone without importing Alembic (most starts are restarts)."""
    if revision == "head" and await at_head(script_location, database_url, schema):
        return
    await asyncio.to_thread(upgrade_sync, script_location, database_url, schema, revision)


def run_env(target_metadata: MetaData) -> None:
    """Body of every service's `migrations/env.py` (online mode only)."""
    from alembic import context

    cfg = context.config
    database_url = cfg.attributes["database_url"]
    schema = cfg.attributes["schema"]

    def _migrate(connection: Connection) -> None:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            version_table=VERSION_TABLE,
            version_table_schema=schema,
            render_as_batch=is_sqlite(database_url),
            transaction_per_migration=False,
        )
        with context.begin_transaction():
            context.run_migrations()

    async def _run() -> None:
        engine = create_engine(database_url, schema, pool_size=1)
        postgres = not is_sqlite(database_url)
        lock = {"key": f"kubeserve-migrate:{schema}"}
        try:
            async with engine.connect() as conn:
                if postgres:
                    # Several replicas may start at once: serialise them on an advisory lock.
                    await conn.execute(text("SELECT pg_advisory_lock(hashtext(:key))"), lock)
                    await conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {schema}"))
                    await conn.commit()
                try:
                    await conn.run_sync(_migrate)
                    await conn.commit()
                finally:
                    if postgres:
                        await conn.execute(text("SELECT pg_advisory_unlock(hashtext(:key))"), lock)
                        await conn.commit()
        finally:
            await engine.dispose()

    asyncio.run(_run())


def create_messaging_tables(op: Operations) -> None:
    """Create the outbox and inbox tables in the migrating service's schema (the migration's
    connection carries the schema translation, so the shared definitions land there)."""
    messaging_metadata.create_all(op.get_bind(), checkfirst=False)


def drop_messaging_tables(op: Operations) -> None:
    messaging_metadata.drop_all(op.get_bind(), checkfirst=False)
