"""The deployments projection: which versions run, from the deployer's events (at least once,
possibly out of order)."""

from __future__ import annotations

from uuid import UUID

from kubeserve_common.db.base import utcnow
from kubeserve_common.db.uow import UnitOfWork
from kubeserve_common.events.catalog import DeploymentDeleted, DeployRequested

from kubeserve_registry.repositories.deployments import DeploymentRepository
from kubeserve_registry.repositories.orm import DeploymentRecord

_NIL = UUID(int=0)  # the version of a deployment known only from its deletion


class DeploymentProjection:
    async def deploy_requested(self, uow: UnitOfWork, event: DeployRequested) -> None:
        repo = DeploymentRepository(uow.session)
        record = await repo.get(event.deployment_id, for_update=True)
        if record is None:
            await repo.add(
                DeploymentRecord(
                    deployment_id=event.deployment_id,
                    owner_id=event.owner_id,
                    model_id=event.model_id,
                    version_id=event.version_id,
                    revision=event.revision,
                    updated_at=utcnow(),
                )
            )
            return
        # A tombstone stays deleted; an older revision (redelivered late) changes nothing.
        if record.deleted_at is not None or event.revision < record.revision:
            return
        record.model_id, record.version_id = event.model_id, event.version_id
        record.revision = event.revision
        record.updated_at = utcnow()
        await uow.session.flush()

    async def deployment_deleted(self, uow: UnitOfWork, event: DeploymentDeleted) -> None:
        repo = DeploymentRepository(uow.session)
        record = await repo.get(event.deployment_id, for_update=True)
        now = utcnow()
        if record is None:
            # Deleted before we saw it requested: remember, so the late request is ignored.
            # The version is unknown; a nil UUID never matches a real one.
            await repo.add(
                DeploymentRecord(
                    deployment_id=event.deployment_id,
                    owner_id=event.owner_id,
                    model_id=_NIL,
                    version_id=_NIL,
                    revision=0,
                    deleted_at=now,
                    updated_at=now,
                )
            )
            return
        record.deleted_at = record.updated_at = now
        await uow.session.flush()
