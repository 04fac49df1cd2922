"""The shared rate-limit store on PostgreSQL: one row per bucket, refilled and drawn from in a
single atomic upsert (the row lock orders concurrent replicas) by the database's clock, on an
autocommit connection, so a lease costs one round trip."""

from __future__ import annotations

import asyncio

from sqlalchemy import Float, cast, delete, func, literal
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from kubeserve_gateway.domain.ratelimit import Limit
from kubeserve_gateway.repositories.orm import rate_buckets as t

_NOW = cast(func.extract("epoch", func.clock_timestamp()), Float)


class PostgresBucketStore:
    def __init__(self, engine: AsyncEngine, *, timeout: float = 2.0) -> None:
        self.engine = engine.execution_options(isolation_level="AUTOCOMMIT")
        self.timeout = timeout

    async def take(self, key: str, limit: Limit, want: int, give_back: int) -> tuple[int, float]:
        rate = literal(float(limit.rate), Float)
        burst = literal(float(limit.burst), Float)
        first = min(want, limit.burst)
        available = func.least(
            burst,
            t.c.tokens
            + func.greatest(literal(0.0, Float), _NOW - t.c.updated) * rate
            + literal(float(give_back), Float),
        )
        granted = func.least(
            literal(want), func.greatest(literal(0), cast(func.floor(available), t.c.granted.type))
        )
        statement = (
            insert(t)
            .values(key=key, tokens=float(limit.burst - first), updated=_NOW, granted=first)
            .on_conflict_do_update(
                index_elements=[t.c.key],
                set_={
                    "tokens": available - granted,
                    "updated": func.greatest(t.c.updated, _NOW),
                    "granted": granted,
                },
            )
            .returning(t.c.granted, t.c.tokens)
        )
        async with asyncio.timeout(self.timeout), self.engine.connect() as conn:
            row = (await conn.execute(statement)).one()
        return int(row.granted), float(row.tokens)

    async def prune(self, idle_seconds: float) -> int:
        async with asyncio.timeout(self.timeout * 5), self.engine.connect() as conn:
            result = await conn.execute(
                delete(t).where(t.c.updated < _NOW - literal(float(idle_seconds), Float))
            )
        return int(result.rowcount or 0)
