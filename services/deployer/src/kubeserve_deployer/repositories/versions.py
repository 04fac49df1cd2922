"""Queries of the version and model projections."""

from __future__ import annotations

from uuid import UUID

from kubeserve_common.db.repository import OwnedRepository, Repository
from kubeserve_common.db.upsert import conflict_insert
from sqlalchemy import select

from kubeserve_deployer.repositories.orm import ModelProjection, VersionProjection


class VersionRepository(OwnedRepository[VersionProjection]):
    model = VersionProjection

    async def ensure(self, version_id: UUID, **values: object) -> None:
        """Insert the row unless it exists (two events of one version may race to create it)."""
        stmt = conflict_insert(self.session, VersionProjection).values(id=version_id, **values)
        await self.session.execute(stmt.on_conflict_do_nothing())

    async def get_for_update(self, version_id: UUID) -> VersionProjection | None:
        """By id alone: only the event consumers use it, scoped by the event's owner."""
        stmt = select(VersionProjection).where(VersionProjection.id == version_id)
        return await self.one_or_none(stmt, for_update=True)


class ModelRepository(Repository[ModelProjection]):
    model = ModelProjection

    async def get(self, model_id: UUID) -> ModelProjection | None:
        return await self.session.get(ModelProjection, model_id)

    async def get_owned(self, owner_id: UUID, model_id: UUID) -> ModelProjection | None:
        found = await self.get(model_id)
        return found if found is not None and found.owner_id == owner_id else None
