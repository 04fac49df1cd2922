"""Model use cases: create, read, list, rename/describe, delete (with its artifacts)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from uuid import UUID

from kubeserve_common.db.base import utcnow
from kubeserve_common.db.uow import UnitOfWorkFactory
from kubeserve_common.errors import Conflict, NotFound, ValidationFailed
from kubeserve_common.events.catalog import ModelCreated
from kubeserve_common.events.envelope import CloudEvent
from kubeserve_common.storage import ArtifactStore, model_prefix
from sqlalchemy.exc import IntegrityError

from kubeserve_registry.domain.models import PYTORCH_REFUSED, Framework, is_valid_model_name
from kubeserve_registry.repositories.deployments import DeploymentRepository
from kubeserve_registry.repositories.models import ModelRepository, ModelSort
from kubeserve_registry.repositories.orm import ModelRecord
from kubeserve_registry.repositories.versions import VersionRepository
from kubeserve_registry.services.views import ModelView

log = logging.getLogger(__name__)
SERVICE = "registry"


def _name_taken(name: str) -> Conflict:
    return Conflict(f"you already have a model named {name!r}", code="model_name_taken")


class ModelService:
    def __init__(self, uow: UnitOfWorkFactory, store: ArtifactStore) -> None:
        self.uow = uow
        self.store = store

    async def create(
        self, owner_id: UUID, name: str, framework: Framework, description: str = ""
    ) -> ModelView:
        if not is_valid_model_name(name):
            raise ValidationFailed(f"invalid model name {name!r}")
        if framework is Framework.PYTORCH:
            raise ValidationFailed(PYTORCH_REFUSED, code="framework_not_served")
        record = ModelRecord(
            owner_id=owner_id,
            name=name,
            framework=framework.value,
            description=description,
            version_seq=0,
        )
        async with self.uow() as uow:
            models = ModelRepository(uow.session)
            if await models.get_by_name(owner_id, name) is not None:
                raise _name_taken(name)
            try:
                await models.add(record)
            except IntegrityError:  # a concurrent create took the name first
                raise _name_taken(name) from None
            payload = ModelCreated(
                model_id=record.id, owner_id=owner_id, name=name, framework=framework.value
            )
            await uow.publish(
                CloudEvent.create(
                    payload, service=SERVICE, subject=f"models/{record.id}", tenant_id=str(owner_id)
                )
            )
            await uow.commit()
        return ModelView.of(record, None)

    async def get(self, owner_id: UUID, model_id: UUID) -> ModelView:
        async with self.uow.reading() as uow:
            record = await ModelRepository(uow.session).get_owned(owner_id, model_id)
            if record is None:
                raise NotFound(f"model {model_id} not found", code="model_not_found")
            latest = await VersionRepository(uow.session).latest_of(owner_id, [model_id])
        return ModelView.of(record, latest.get(model_id))

    async def list(
        self, owner_id: UUID, *, limit: int, offset: int, sort: ModelSort
    ) -> tuple[Sequence[ModelView], int]:
        async with self.uow.reading() as uow:
            records, total = await ModelRepository(uow.session).page(
                owner_id, limit=limit, offset=offset, sort=sort
            )
            latest = await VersionRepository(uow.session).latest_of(
                owner_id, [r.id for r in records]
            )
        return [ModelView.of(r, latest.get(r.id)) for r in records], total

    async def update(
        self, owner_id: UUID, model_id: UUID, *, name: str | None, description: str | None
    ) -> ModelView:
        async with self.uow() as uow:
            models = ModelRepository(uow.session)
            record = await models.get_owned(owner_id, model_id)
            if record is None:
                raise NotFound(f"model {model_id} not found", code="model_not_found")
            if name is not None and name != record.name:
                if not is_valid_model_name(name):
                    raise ValidationFailed(f"invalid model name {name!r}")
                if await models.get_by_name(owner_id, name) is not None:
                    raise _name_taken(name)
                record.name = name
            if description is not None:
                record.description = description
            record.updated_at = utcnow()
            try:
                await uow.session.flush()
            except IntegrityError:
                raise _name_taken(name or record.name) from None
            latest = await VersionRepository(uow.session).latest_of(owner_id, [model_id])
            await uow.commit()
        return ModelView.of(record, latest.get(model_id))

    async def delete(self, owner_id: UUID, model_id: UUID) -> None:
        """Delete the model, its versions and their artifacts; refused while deployed."""
        async with self.uow() as uow:
            models = ModelRepository(uow.session)
            # Taking the version counter's lock waits for uploads committing right now.
            if await models.allocate_version_number(owner_id, model_id) is None:
                raise NotFound(f"model {model_id} not found", code="model_not_found")
            record = await models.get_owned(owner_id, model_id)
            assert record is not None
            if await DeploymentRepository(uow.session).model_is_deployed(owner_id, model_id):
                raise Conflict(
                    "a version of this model is deployed; delete its deployments first",
                    code="model_deployed",
                )
            await models.delete(record)
            await uow.commit()
        # Objects go after the rows: a failure here leaves unreachable bytes (logged), never a
        # version pointing at missing bytes.
        try:
            removed = await self.store.delete_prefix(model_prefix(owner_id, model_id))
        except Exception:
            log.exception(
                "artifacts of a deleted model were not removed", extra={"model_id": str(model_id)}
            )
        else:
            log.info("model deleted", extra={"model_id": str(model_id), "objects": removed})
