"""The outbox relay: publishes committed outbox rows with broker confirms and marks them sent.

Rows are claimed with `FOR UPDATE SKIP LOCKED` (PostgreSQL), so several relays share the work
and never publish the same row twice in the normal path; a crash between publish and mark
republishes (at-least-once, consumers are idempotent). A commit that wrote rows wakes the relay
of its own process; on PostgreSQL it also sends `NOTIFY kubeserve_outbox_<svc>` which the relays
of the service's other processes LISTEN to. The poll is only a safety net: it starts at
`poll_interval` and doubles while passes find nothing, up to `idle_interval`, so an idle
service does not burn CPU.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from kubeserve_common.db.base import outbox_table, utcnow
from kubeserve_common.events.envelope import CloudEvent
from kubeserve_common.messaging.bus import EventBus
from kubeserve_common.metrics import (
    OUTBOX_LAG,
    OUTBOX_PENDING,
    OUTBOX_PUBLISH_FAILURES,
    OUTBOX_PUBLISHED,
)
from kubeserve_common.waiting import Backoff, wait_for_wake

log = logging.getLogger(__name__)


def notify_channel(service: str) -> str:
    return f"kubeserve_outbox_{service}"


class OutboxRelay:
    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        bus: EventBus,
        *,
        service: str,
        batch_size: int = 200,
        poll_interval: float = 1.0,
        max_backoff: float = 10.0,
        idle_interval: float = 30.0,
        keep_sent: timedelta = timedelta(days=7),
    ) -> None:
        self._sessions = session_factory
        self._bus = bus
        self.service = service
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.max_backoff = max_backoff
        self.idle_interval = max(idle_interval, poll_interval)
        self.keep_sent = keep_sent
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._listener: asyncio.Task[None] | None = None
        self._last_purge = datetime.min.replace(tzinfo=UTC)

    def wake(self) -> None:
        """Called after a commit that wrote outbox rows (thread-unsafe, same loop only)."""
        self._wake.set()

    def start(self) -> None:
        if self._task is None:
            loop = asyncio.get_running_loop()
            self._task = loop.create_task(self.run(), name="outbox-relay")
            engine = self._sessions.kw.get("bind")
            if engine is not None and engine.dialect.name == "postgresql":
                self._listener = loop.create_task(self._listen(engine), name="outbox-listen")

    async def stop(self) -> None:
        for task in (self._listener, self._task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._task = self._listener = None

    async def _listen(self, engine: AsyncEngine) -> None:
        """Wake on NOTIFY from commits of this service's other processes; reconnect with
        backoff when the connection is lost (the poll covers the gap)."""
        channel = notify_channel(self.service)
        reconnect = Backoff(self.poll_interval, self.idle_interval)
        while True:
            try:
                async with engine.connect() as conn:
                    raw = await conn.get_raw_connection()
                    driver: Any = raw.driver_connection
                    lost = asyncio.Event()
                    await driver.add_listener(channel, lambda *_: self._wake.set())
                    driver.add_termination_listener(lambda *_, lost=lost: lost.set())
                    self._wake.set()  # rows may have been written while we were not listening
                    reconnect.reset()
                    await lost.wait()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.info("outbox LISTEN connection failed, retrying: %r", exc)
            await reconnect.wait()

    async def run(self) -> None:
        idle = Backoff(self.poll_interval, self.idle_interval)
        failing = Backoff(min(self.max_backoff, self.poll_interval * 2), self.max_backoff)
        while True:
            # Cleared before the pass reads the outbox: a commit (or NOTIFY) landing during the
            # pass leaves it set, and the wait below returns at once for another pass.
            self._wake.clear()
            try:
                published = await self.publish_batch()
                failing.reset()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # broker or database down: back off, rows stay pending
                OUTBOX_PUBLISH_FAILURES.labels(self.service).inc()
                delay = failing.grow()
                log.warning("outbox relay pass failed, retrying in %.1fs: %r", delay, exc)
                await wait_for_wake(None, delay)
                continue
            if published >= self.batch_size:
                continue  # more may be waiting
            if published:
                idle.reset()
            # Nothing (more) found: wait longer each time, until woken by a commit or a NOTIFY.
            await idle.wait(self._wake)

    async def publish_batch(self) -> int:
        """Publish up to `batch_size` pending rows; return how many were published.

        Raises when publishing failed, after marking the rows that did get confirmed.
        """
        async with self._sessions() as session, session.begin():
            rows = (
                await session.execute(
                    select(outbox_table.c.id, outbox_table.c.body, outbox_table.c.created_at)
                    .where(outbox_table.c.sent_at.is_(None))
                    .order_by(outbox_table.c.created_at, outbox_table.c.id)
                    .limit(self.batch_size)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            await self._record_lag(session, rows[0].created_at if rows else None)
            if not rows:
                await self._maybe_purge(session)
                return 0
            results = await asyncio.gather(
                *(self._bus.publish(CloudEvent.from_json(row.body)) for row in rows),
                return_exceptions=True,
            )
            sent = [row.id for row, res in zip(rows, results, strict=True) if res is None]
            failed = [
                (row.id, res)
                for row, res in zip(rows, results, strict=True)
                if isinstance(res, BaseException)
            ]
            now = utcnow()
            if sent:
                await session.execute(
                    update(outbox_table).where(outbox_table.c.id.in_(sent)).values(sent_at=now)
                )
            for row_id, exc in failed:
                await session.execute(
                    update(outbox_table)
                    .where(outbox_table.c.id == row_id)
                    .values(attempts=outbox_table.c.attempts + 1, last_error=repr(exc)[:1000])
                )
        OUTBOX_PUBLISHED.labels(self.service).inc(len(sent))
        if failed:
            raise ConnectionError(
                f"{len(failed)} of {len(rows)} outbox rows not published: {failed[0][1]!r}"
            )
        return len(sent)

    async def _record_lag(self, session: AsyncSession, oldest: datetime | None) -> None:
        pending = (
            await session.execute(
                select(func.count())
                .select_from(outbox_table)
                .where(outbox_table.c.sent_at.is_(None))
            )
        ).scalar_one()
        OUTBOX_PENDING.labels(self.service).set(pending)
        OUTBOX_LAG.labels(self.service).set(
            (utcnow() - oldest).total_seconds() if oldest is not None else 0.0
        )

    async def _maybe_purge(self, session: AsyncSession) -> None:
        now = utcnow()
        if now - self._last_purge < timedelta(hours=1):
            return
        self._last_purge = now
        await session.execute(
            delete(outbox_table).where(outbox_table.c.sent_at < now - self.keep_sent)
        )
