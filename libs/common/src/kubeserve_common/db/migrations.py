"""Alembic per service schema, on PostgreSQL and SQLite alike.

Each service keeps its revisions in `services/<svc>/migrations/`; its `env.py` is two lines
calling `run_env()`. `upgrade()` is what services call at start (or a migrations Job runs).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command, context
from alembic.config import Config
from alembic.operations import Operations
from sqlalchemy import MetaData, text
from sqlalchemy.engine import Connection

from kubeserve_common.db.base import messaging_metadata
from kubeserve_common.db.session import create_engine, is_sqlite

VERSION_TABLE = "alembic_version"


def _config(script_location: Path, database_url: str, schema: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(script_location))
    cfg.attributes["database_url"] = database_url
    cfg.attributes["schema"] = schema
    return cfg


def upgrade_sync(
    script_location: Path, database_url: str, schema: str, revision: str = "head"
) -> None:
    command.upgrade(_config(script_location, database_url, schema), revision)


async def upgrade(
    script_location: Path, database_url: str, schema: str, revision: str = "head"
) -> None:
    """Apply migrations up to `revision` (Alembic is synchronous: run it on a worker thread,
    where `run_env()` drives the async engine on a loop of its own)."""
    await asyncio.to_thread(upgrade_sync, script_location, database_url, schema, revision)


def run_env(target_metadata: MetaData) -> None:
    """Body of every service's `migrations/env.py` (online mode only)."""
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
