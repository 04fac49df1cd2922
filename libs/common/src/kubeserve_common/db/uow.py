"""Unit of work: one session, one transaction; events go to the outbox in that transaction."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from types import TracebackType

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from kubeserve_common.db.base import inbox_table, outbox_table, utcnow
from kubeserve_common.db.upsert import conflict_insert
from kubeserve_common.events.envelope import CloudEvent


class UnitOfWork:
    """`async with uow: ...; await uow.commit()` - leaving without commit rolls back.

    `on_commit` runs after a commit that wrote outbox rows (it wakes the relay).
    """

    session: AsyncSession

    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        on_commit: Callable[[], None] | None = None,
        notify: str | None = None,
    ) -> None:
        self._factory = session_factory
        self._on_commit = on_commit
        self._notify = notify
        self._published = 0
        self._active = False

    async def __aenter__(self) -> UnitOfWork:
        if self._active:
            raise RuntimeError("a UnitOfWork is not re-entrant")
        self.session = self._factory()
        self._active = True
        self._published = 0
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await self.session.rollback()  # no-op after a commit
        finally:
            await self.session.close()
            self._active = False

    async def commit(self) -> None:
        await self.session.commit()
        published, self._published = self._published, 0
        if published and self._on_commit is not None:
            self._on_commit()

    async def rollback(self) -> None:
        await self.session.rollback()
        self._published = 0

    async def publish(self, event: CloudEvent) -> None:
        """Write `event` to the outbox; it is published only if this transaction commits."""
        await self.session.execute(
            insert(outbox_table).values(
                id=event.id,
                event_type=event.type,
                body=event.to_json().decode(),
                created_at=utcnow(),
                attempts=0,
            )
        )
        if self._published == 0 and self._notify is not None and self._dialect() == "postgresql":
            # Delivered at commit (and dropped on rollback): wakes the relays of this
            # service's other processes, which LISTEN on the channel.
            await self.session.execute(select(func.pg_notify(self._notify, "")))
        self._published += 1

    def _dialect(self) -> str:
        bind = self.session.bind
        return bind.dialect.name if bind is not None else ""

    async def claim(self, consumer: str, event_id: str) -> bool:
        """Record that `consumer` handles `event_id` in this transaction.

        False means it was already handled (or is being handled by a concurrent transaction that
        then commits): the caller must skip the effect.
        """
        values = {"consumer": consumer, "event_id": event_id, "processed_at": utcnow()}
        stmt = conflict_insert(self.session, inbox_table).values(**values)
        result = await self.session.execute(stmt.on_conflict_do_nothing())
        return bool(result.rowcount)  # type: ignore[attr-defined]


@dataclass(frozen=True, eq=False)  # compared by identity
class UnitOfWorkFactory:
    """What services receive: a callable making a fresh UnitOfWork per use case."""

    session_factory: async_sessionmaker[AsyncSession]
    on_commit: Callable[[], None] | None = None
    notify: str | None = None  # PostgreSQL NOTIFY channel of the service's outbox relays

    def __call__(self) -> UnitOfWork:
        return UnitOfWork(self.session_factory, self.on_commit, self.notify)

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[UnitOfWork]:
        """A read-only unit of work whose loaded rows stay usable after the block: leaving a
        UnitOfWork without commit rolls back, which expires every loaded row, so they are
        detached first."""
        async with self() as uow:
            try:
                yield uow
            finally:
                uow.session.expunge_all()
