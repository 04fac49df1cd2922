"""The deployments projection (fed by the deployer's events) behind the 409 rules."""

from __future__ import annotations

from uuid import UUID

from kubeserve_common.db.repository import Repository
from sqlalchemy import exists, select

from kubeserve_registry.repositories.orm import DeploymentRecord


class DeploymentRepository(Repository[DeploymentRecord]):
    model = DeploymentRecord

    async def get(
        self, deployment_id: UUID, *, for_update: bool = False
    ) -> DeploymentRecord | None:
        stmt = select(DeploymentRecord).where(DeploymentRecord.deployment_id == deployment_id)
        return await self.one_or_none(stmt, for_update=for_update)

    async def version_is_deployed(self, owner_id: UUID, version_id: UUID) -> bool:
        return await self._any(
            (DeploymentRecord.owner_id == owner_id) & (DeploymentRecord.version_id == version_id)
        )

    async def model_is_deployed(self, owner_id: UUID, model_id: UUID) -> bool:
        return await self._any(
            (DeploymentRecord.owner_id == owner_id) & (DeploymentRecord.model_id == model_id)
        )

    async def _any(self, condition: object) -> bool:
        stmt = select(
            exists().where(condition, DeploymentRecord.deleted_at.is_(None))  # type: ignore[arg-type]
        )
        return bool((await self.session.execute(stmt)).scalar_one())
