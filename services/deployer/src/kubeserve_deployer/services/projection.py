"""The deployer's projection of models and versions, fed by registry and builder events.

The deployer needs to know who owns a version, where its artifact is and whether it is Ready;
it learns that from `ModelCreated`, `VersionUploaded`, `VersionBuilt` and `VersionBuildFailed`
and never reads the registry's tables. Events of one version may arrive in any order (they come
from two services): each handler fills its own fields and never downgrades a final status.
"""

from __future__ import annotations

from kubeserve_common.db.base import utcnow
from kubeserve_common.db.uow import UnitOfWork
from kubeserve_common.errors import PermanentError
from kubeserve_common.events.catalog import (
    ModelCreated,
    VersionBuildFailed,
    VersionBuilt,
    VersionUploaded,
)

from kubeserve_deployer.domain.deployments import VersionStatus
from kubeserve_deployer.repositories.orm import ModelProjection, VersionProjection
from kubeserve_deployer.repositories.versions import ModelRepository, VersionRepository


class VersionProjectionService:
    """Consumer use cases; they run inside the inbox's unit of work (which commits)."""

    async def model_created(self, uow: UnitOfWork, event: ModelCreated) -> None:
        models = ModelRepository(uow.session)
        found = await models.get(event.model_id)
        if found is None:
            await models.add(
                ModelProjection(
                    id=event.model_id,
                    owner_id=event.owner_id,
                    name=event.name,
                    framework=event.framework,
                )
            )
        elif found.owner_id != event.owner_id:
            raise PermanentError(f"model {event.model_id} already belongs to another owner")

    async def _version(
        self, uow: UnitOfWork, event: VersionUploaded | VersionBuilt | VersionBuildFailed
    ) -> VersionProjection:
        versions = VersionRepository(uow.session)
        await versions.ensure(
            event.version_id,
            owner_id=event.owner_id,
            model_id=event.model_id,
            version_tag=event.version_tag,
            status=VersionStatus.UPLOADED.value,
            requirements="",
            updated_at=utcnow(),
        )
        found = await versions.get_for_update(event.version_id)
        if found is None:  # pragma: no cover - inserted just above
            raise RuntimeError(f"version {event.version_id} vanished")
        if found.owner_id != event.owner_id or found.model_id != event.model_id:
            # Never let an event re-home a version to another tenant.
            raise PermanentError(f"version {event.version_id} owner/model mismatch")
        return found

    async def version_uploaded(self, uow: UnitOfWork, event: VersionUploaded) -> None:
        version = await self._version(uow, event)
        version.framework = event.framework
        version.artifact_uri = event.artifact_uri
        version.filename = event.filename
        version.sha256 = event.sha256
        version.size = event.size
        version.requirements = event.requirements
        version.updated_at = utcnow()

    async def version_built(self, uow: UnitOfWork, event: VersionBuilt) -> None:
        version = await self._version(uow, event)
        if version.status == VersionStatus.FAILED.value:
            return  # a final status is never changed by a late or duplicate result
        version.status = VersionStatus.READY.value
        version.signature = event.signature
        version.wheelhouse_uri = event.wheelhouse_uri
        version.predicted_cold_start_ms = event.predicted_cold_start_ms
        cold = event.dependency_plan.get("cold_start")
        if isinstance(cold, dict):  # the estimator's inputs, measured by the build
            load, wheels = cold.get("model_load_ms"), cold.get("wheel_bytes")
            version.trial_load_ms = float(load) if isinstance(load, int | float) else None
            version.wheelhouse_bytes = int(wheels) if isinstance(wheels, int) else None
        version.updated_at = utcnow()

    async def version_build_failed(self, uow: UnitOfWork, event: VersionBuildFailed) -> None:
        version = await self._version(uow, event)
        if version.status == VersionStatus.READY.value:
            return
        version.status = VersionStatus.FAILED.value
        version.failure_reason = f"{event.stage}: {event.reason}"
        version.updated_at = utcnow()
