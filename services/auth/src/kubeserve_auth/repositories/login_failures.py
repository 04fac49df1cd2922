"""Queries on the per-account failed-login counters."""

from __future__ import annotations

from datetime import datetime

from kubeserve_common.db.repository import Repository
from kubeserve_common.db.upsert import conflict_insert
from sqlalchemy import case, delete, select, update

from kubeserve_auth.repositories.orm import LoginFailure


class LoginFailureRepository(Repository[LoginFailure]):
    model = LoginFailure

    async def get(self, email_hash: str) -> LoginFailure | None:
        stmt = select(LoginFailure).where(LoginFailure.email_hash == email_hash)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def record_failure(
        self, email_hash: str, now: datetime, *, stale_before: datetime
    ) -> int:
        """Count one more failure atomically (concurrent attempts each count); the new total.
        A count whose last failure is older than `stale_before` starts again from one."""
        values = conflict_insert(self.session, LoginFailure).values(
            email_hash=email_hash, failures=1, last_failed_at=now
        )
        stmt = values.on_conflict_do_update(
            index_elements=[LoginFailure.email_hash],
            set_={
                "failures": case(
                    (LoginFailure.last_failed_at < stale_before, 1),
                    else_=LoginFailure.failures + 1,
                ),
                "last_failed_at": now,
            },
        ).returning(LoginFailure.failures)
        return int((await self.session.execute(stmt)).scalar_one())

    async def lock(self, email_hash: str, until: datetime) -> None:
        await self.session.execute(
            update(LoginFailure)
            .where(LoginFailure.email_hash == email_hash)
            .values(locked_until=until)
        )

    async def clear(self, email_hash: str) -> None:
        await self.session.execute(
            delete(LoginFailure).where(LoginFailure.email_hash == email_hash)
        )

    async def prune(self, idle_since: datetime) -> None:
        await self.session.execute(
            delete(LoginFailure).where(LoginFailure.last_failed_at < idle_since)
        )
