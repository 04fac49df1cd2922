"""Queries on the build queue; they run in the caller's unit of work and never commit."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any, cast

from kubeserve_common.db.repository import OwnedRepository
from kubeserve_common.db.upsert import conflict_insert
from sqlalchemy import Table, func, or_, select, update
from sqlalchemy.orm import aliased

from kubeserve_builder.domain.models import BuildStatus
from kubeserve_builder.repositories.orm import BuildRecord


class BuildRepository(OwnedRepository[BuildRecord]):
    model = BuildRecord

    async def add_if_absent(self, values: dict[str, Any]) -> bool:
        """Queue a build unless the version already has one; True when a row was added."""
        # __table__ is typed as any FromClause; a mapped class's is always its Table.
        table = cast(Table, BuildRecord.__table__)
        stmt = (
            conflict_insert(self.session, table)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["version_id"])
        )
        result = await self.session.execute(stmt)
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def claim_next(self, worker: str, now: datetime, lease: float) -> BuildRecord | None:
        """Take the next runnable queued build for `worker`, or None.

        Fair across tenants (round-robin): the next build is the oldest one of the tenant whose
        latest build started longest ago (a tenant with none started comes first), so one
        tenant's burst of 50 uploads delays another tenant's single upload by one build, not 50.

        PostgreSQL: the row is locked with SKIP LOCKED, so concurrent builders never pick the
        same one. SQLite (embedded mode, one writer) ignores the lock clause; the status guard
        in the UPDATE keeps a second claimer out there.
        """
        earlier = aliased(BuildRecord)
        last_start = (
            select(func.max(earlier.started_at))
            .where(earlier.owner_id == BuildRecord.owner_id)
            .correlate(BuildRecord)
            .scalar_subquery()
        )
        candidate = (
            await self.session.execute(
                select(BuildRecord.id)
                .where(
                    BuildRecord.status == BuildStatus.QUEUED.value,
                    or_(BuildRecord.not_before.is_(None), BuildRecord.not_before <= now),
                )
                .order_by(last_start.asc().nulls_first(), BuildRecord.created_at)
                .limit(1)
                .with_for_update(skip_locked=True)
            )
        ).scalar_one_or_none()
        if candidate is None:
            return None
        result = await self.session.execute(
            update(BuildRecord)
            .where(BuildRecord.id == candidate, BuildRecord.status == BuildStatus.QUEUED.value)
            .values(
                status=BuildStatus.RUNNING.value,
                attempts=BuildRecord.attempts + 1,
                lease_owner=worker,
                lease_expires_at=now + timedelta(seconds=lease),
                heartbeat_at=now,
                started_at=now,
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        if not result.rowcount:  # type: ignore[attr-defined]
            return None
        return await self.session.get(BuildRecord, candidate, populate_existing=True)

    async def oldest_waiting_since(self, now: datetime) -> datetime | None:
        """When the longest-waiting claimable build entered the queue (None: none waits).

        A build waits from its last (re-)queueing (`updated_at`: queued rows change only when
        queued) or, when it was put back with a retry delay, from the end of that delay; a
        build whose delay has not ended yet is not waiting to be claimed.
        """
        since = func.coalesce(BuildRecord.not_before, BuildRecord.updated_at)
        stmt = select(func.min(since)).where(
            BuildRecord.status == BuildStatus.QUEUED.value,
            or_(BuildRecord.not_before.is_(None), BuildRecord.not_before <= now),
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def heartbeat(
        self, build_id: uuid.UUID, worker: str, now: datetime, lease: float
    ) -> bool:
        """Extend the lease; False when the build is no longer ours (it was re-queued)."""
        result = await self.session.execute(
            update(BuildRecord)
            .where(
                BuildRecord.id == build_id,
                BuildRecord.lease_owner == worker,
                BuildRecord.status == BuildStatus.RUNNING.value,
            )
            .values(lease_expires_at=now + timedelta(seconds=lease), heartbeat_at=now)
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def expired(self, now: datetime, limit: int = 50) -> list[BuildRecord]:
        """Running builds whose lease ran out (their builder died), locked for the caller."""
        stmt = (
            select(BuildRecord)
            .where(
                BuildRecord.status == BuildStatus.RUNNING.value,
                BuildRecord.lease_expires_at < now,
            )
            .order_by(BuildRecord.lease_expires_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return list((await self.session.execute(stmt)).scalars())

    async def requeue(
        self, build: BuildRecord, now: datetime, *, delay: float = 0.0, note: str | None = None
    ) -> None:
        build.status = BuildStatus.QUEUED.value
        build.lease_owner = None
        build.lease_expires_at = None
        build.not_before = now + timedelta(seconds=delay) if delay else None
        build.reason = note
        build.updated_at = now
        await self.session.flush()

    async def release_worker(self, worker: str, now: datetime) -> int:
        """Re-queue the running builds of `worker` without counting the interrupted run."""
        result = await self.session.execute(
            update(BuildRecord)
            .where(
                BuildRecord.lease_owner == worker,
                BuildRecord.status == BuildStatus.RUNNING.value,
            )
            .values(
                status=BuildStatus.QUEUED.value,
                attempts=BuildRecord.attempts - 1,
                lease_owner=None,
                lease_expires_at=None,
                reason="re-queued: the builder running it stopped",
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def owned_running(self, build_id: uuid.UUID, worker: str) -> BuildRecord | None:
        """The build if `worker` still holds its lease (locked), else None."""
        stmt = (
            select(BuildRecord)
            .where(
                BuildRecord.id == build_id,
                BuildRecord.lease_owner == worker,
                BuildRecord.status == BuildStatus.RUNNING.value,
            )
            .with_for_update()
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def finish(
        self,
        build: BuildRecord,
        now: datetime,
        *,
        succeeded: bool,
        stage: str | None,
        reason: str | None,
        report_uri: str | None,
        report: dict[str, Any] | None,
    ) -> None:
        build.status = (BuildStatus.SUCCEEDED if succeeded else BuildStatus.FAILED).value
        build.stage, build.reason = stage, reason
        build.report_uri, build.report = report_uri, report
        build.lease_owner = build.lease_expires_at = None
        build.finished_at = build.updated_at = now
        await self.session.flush()

    async def for_version(self, owner_id: uuid.UUID, version_id: uuid.UUID) -> BuildRecord | None:
        stmt = self.for_owner(owner_id).where(BuildRecord.version_id == version_id)
        return (await self.session.execute(stmt)).scalar_one_or_none()
