"""Queries of deployments, their revisions, events and (local backend) replicas."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from kubeserve_common.db.repository import OwnedRepository, Repository
from sqlalchemy import Select, delete, func, select, text

from kubeserve_deployer.domain.deployments import ACTIVE_STATUSES
from kubeserve_deployer.repositories.orm import (
    DeploymentEventRecord,
    DeploymentRecord,
    ReplicaRecord,
    RevisionRecord,
)


class DeploymentRepository(OwnedRepository[DeploymentRecord]):
    model = DeploymentRecord

    def for_owner(self, owner_id: UUID) -> Select[Any]:
        # Deleted deployments are gone for their owner (a GET is 404).
        return super().for_owner(owner_id).where(DeploymentRecord.deleted_at.is_(None))

    async def get_owned_for_update(
        self, owner_id: UUID, deployment_id: UUID
    ) -> DeploymentRecord | None:
        stmt = self.for_owner(owner_id).where(DeploymentRecord.id == deployment_id)
        return await self.one_or_none(stmt, for_update=True)

    async def page(
        self, owner_id: UUID, limit: int, offset: int, *, only: Sequence[UUID] | None = None
    ) -> tuple[list[DeploymentRecord], int]:
        base = self.for_owner(owner_id)
        if only is not None:  # an API key limited to some deployments
            base = base.where(DeploymentRecord.id.in_(list(only)))
        total = (
            await self.session.execute(select(func.count()).select_from(base.subquery()))
        ).scalar_one()
        rows = (
            await self.session.execute(
                base.order_by(DeploymentRecord.created_at.desc(), DeploymentRecord.id)
                .limit(limit)
                .offset(offset)
            )
        ).scalars()
        return list(rows), int(total)

    async def replicas_in_use(self, owner_id: UUID, *, excluding: UUID | None = None) -> int:
        stmt = (
            select(func.coalesce(func.sum(DeploymentRecord.desired_replicas), 0))
            .where(DeploymentRecord.owner_id == owner_id)
            .where(DeploymentRecord.deleted_at.is_(None))
            .where(DeploymentRecord.deleting.is_(False))
            .where(DeploymentRecord.status.in_([s.value for s in ACTIVE_STATUSES]))
        )
        if excluding is not None:
            stmt = stmt.where(DeploymentRecord.id != excluding)
        return int((await self.session.execute(stmt)).scalar_one())

    async def lock_owner(self, owner_id: UUID) -> None:
        """Serialise quota checks of one owner (PostgreSQL; SQLite has one writer anyway)."""
        bind = self.session.bind
        if bind is not None and bind.dialect.name == "postgresql":
            await self.session.execute(
                text("SELECT pg_advisory_xact_lock(hashtext(:key))"),
                {"key": f"deployer-quota:{owner_id}"},
            )

    # -- worker side (no owner: the worker acts for every tenant) --------------------------------
    async def get_any(self, deployment_id: UUID) -> DeploymentRecord | None:
        return await self.session.get(DeploymentRecord, deployment_id)

    async def get_live(
        self, deployment_id: UUID, *, for_update: bool = False
    ) -> DeploymentRecord | None:
        stmt = select(DeploymentRecord).where(
            DeploymentRecord.id == deployment_id, DeploymentRecord.deleted_at.is_(None)
        )
        return await self.one_or_none(stmt, for_update=for_update)

    async def live(self) -> list[DeploymentRecord]:
        stmt = select(DeploymentRecord).where(DeploymentRecord.deleted_at.is_(None))
        return list((await self.session.execute(stmt)).scalars())


class RevisionRepository(Repository[RevisionRecord]):
    model = RevisionRecord

    async def get(self, deployment_id: UUID, revision: int) -> RevisionRecord | None:
        stmt = select(RevisionRecord).where(
            RevisionRecord.deployment_id == deployment_id, RevisionRecord.revision == revision
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def for_deployments(self, ids: Sequence[UUID]) -> list[RevisionRecord]:
        if not ids:
            return []
        stmt = select(RevisionRecord).where(RevisionRecord.deployment_id.in_(ids))
        return list((await self.session.execute(stmt)).scalars())

    async def history(self, deployment_id: UUID) -> list[RevisionRecord]:
        stmt = (
            select(RevisionRecord)
            .where(RevisionRecord.deployment_id == deployment_id)
            .order_by(RevisionRecord.revision.desc())
        )
        return list((await self.session.execute(stmt)).scalars())


class EventRepository(Repository[DeploymentEventRecord]):
    model = DeploymentEventRecord

    async def record(self, deployment_id: UUID, kind: str, message: str) -> None:
        self.session.add(
            DeploymentEventRecord(deployment_id=deployment_id, kind=kind, message=message[:2000])
        )

    async def recent(self, deployment_id: UUID, limit: int) -> list[DeploymentEventRecord]:
        stmt = (
            select(DeploymentEventRecord)
            .where(DeploymentEventRecord.deployment_id == deployment_id)
            .order_by(DeploymentEventRecord.id.desc())
            .limit(limit)
        )
        return list(reversed(list((await self.session.execute(stmt)).scalars())))

    async def prune(self, deployment_id: UUID, keep: int) -> None:
        """Keep the newest `keep` events of a deployment (the history is recent, not full)."""
        newest = (
            select(DeploymentEventRecord.id)
            .where(DeploymentEventRecord.deployment_id == deployment_id)
            .order_by(DeploymentEventRecord.id.desc())
            .limit(keep)
        )
        await self.session.execute(
            delete(DeploymentEventRecord).where(
                DeploymentEventRecord.deployment_id == deployment_id,
                DeploymentEventRecord.id.not_in(newest.scalar_subquery()),
            )
        )


class ReplicaRepository(Repository[ReplicaRecord]):
    model = ReplicaRecord

    async def for_deployment(self, deployment_id: UUID) -> list[ReplicaRecord]:
        stmt = (
            select(ReplicaRecord)
            .where(ReplicaRecord.deployment_id == deployment_id)
            .order_by(ReplicaRecord.revision, ReplicaRecord.index)
        )
        return list((await self.session.execute(stmt)).scalars())

    async def all(self) -> list[ReplicaRecord]:
        return list((await self.session.execute(select(ReplicaRecord))).scalars())

    async def remove(self, record: ReplicaRecord) -> None:
        await self.session.delete(record)
