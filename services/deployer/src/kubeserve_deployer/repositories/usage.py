"""The owner's active deployments as the quota counts them (the same filter as
`DeploymentRepository.replicas_in_use`)."""

from __future__ import annotations

from uuid import UUID

from kubeserve_deployer.domain.deployments import ACTIVE_STATUSES
from kubeserve_deployer.repositories.deployments import DeploymentRepository
from kubeserve_deployer.repositories.orm import DeploymentRecord


class UsageRepository(DeploymentRepository):
    async def active(self, owner_id: UUID) -> list[DeploymentRecord]:
        stmt = (
            self.for_owner(owner_id)
            .where(DeploymentRecord.deleting.is_(False))
            .where(DeploymentRecord.status.in_([s.value for s in ACTIVE_STATUSES]))
            .order_by(DeploymentRecord.created_at, DeploymentRecord.id)
        )
        return list((await self.session.execute(stmt)).scalars().all())
