"""Engines bound to one service schema: a PostgreSQL schema, or an SQLite file in embedded mode."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool

_SCHEMA = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def create_engine(url: str, schema: str, *, pool_size: int = 10, **kwargs: Any) -> AsyncEngine:
    """An engine whose unqualified tables resolve to `schema`.

    PostgreSQL: tables live in the schema `schema` of the given database.
    SQLite: the file in the URL is attached under the name `schema`, so `schema.table` works there
    too; WAL and a busy timeout let the relay and request handlers share the file.
    """
    if not _SCHEMA.match(schema):
        raise ValueError(f"invalid schema name {schema!r}")
    if is_sqlite(url):
        database = make_url(url).database
        if not database or database == ":memory:":
            raise ValueError("the embedded mode needs an SQLite file, not an in-memory database")
        Path(database).parent.mkdir(parents=True, exist_ok=True)
        # The main database of each connection is a throwaway in-memory one; the service's file
        # is attached under the schema name. A queue pool (not the StaticPool SQLAlchemy picks
        # for in-memory URLs) keeps concurrent sessions on separate connections.
        engine = create_async_engine(
            "sqlite+aiosqlite://",
            connect_args={"timeout": 30},
            poolclass=AsyncAdaptedQueuePool,
            pool_size=pool_size,
            max_overflow=pool_size,
            **kwargs,
        )

        @event.listens_for(engine.sync_engine, "connect")
        def _attach(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute(f"ATTACH DATABASE ? AS {schema}", (database,))
            cursor.execute(f"PRAGMA {schema}.journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()
    else:
        engine = create_async_engine(
            url,
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_timeout=10,
            pool_pre_ping=True,
            connect_args={
                "timeout": 10,
                "command_timeout": 60,
                "server_settings": {"application_name": f"kubeserve-{schema}"},
            },
            **kwargs,
        )
    return engine.execution_options(schema_translate_map={None: schema})


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker:  # type: ignore[type-arg]
    return async_sessionmaker(engine, expire_on_commit=False)


async def ping(engine: AsyncEngine, timeout: float) -> None:  # noqa: ASYNC109
    """Raise when the database does not answer `SELECT 1` within `timeout` seconds."""

    async def _select() -> None:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    await asyncio.wait_for(_select(), timeout)
