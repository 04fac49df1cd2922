"""Version use cases: the streaming upload, reads, artifact download, delete, and the build
results arriving from the builder.

Upload protocol ("store first, commit after"): the model part streams into a staging key while
no database connection is held; then one transaction takes the model's version counter (row
lock), moves the staged object to `models/{user}/{model}/{tag}/{filename}`, writes the version row
and the `VersionUploaded` outbox row, and commits. Any failure before the commit removes what was
written, so an interrupted upload leaves neither a visible version nor an object.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from uuid import UUID

from kubeserve_common.db.base import utcnow
from kubeserve_common.db.uow import UnitOfWork, UnitOfWorkFactory
from kubeserve_common.errors import (
    BadRequest,
    Conflict,
    KubeServeError,
    NotFound,
    PayloadTooLarge,
    ValidationFailed,
)
from kubeserve_common.events.catalog import VersionBuildFailed, VersionBuilt, VersionUploaded
from kubeserve_common.events.envelope import CloudEvent
from kubeserve_common.storage import (
    ArtifactStore,
    StoredObject,
    staging_key,
    version_prefix,
)

from kubeserve_registry.domain.models import (
    REQUIREMENTS_FILENAME,
    FilenameRejected,
    Framework,
    VersionStatus,
    decode_requirements,
    parse_version_ref,
    safe_model_filename,
    version_tag,
)
from kubeserve_registry.domain.uploads import MODEL_FIELD, REQUIREMENTS_FIELD, IncomingPart
from kubeserve_registry.metrics import BUILD_RESULTS, UPLOADED_BYTES, UPLOADS
from kubeserve_registry.repositories.deployments import DeploymentRepository
from kubeserve_registry.repositories.models import ModelRepository
from kubeserve_registry.repositories.orm import ModelRecord, VersionRecord
from kubeserve_registry.repositories.versions import VersionRepository, VersionSort
from kubeserve_registry.services.views import VersionView

log = logging.getLogger(__name__)
SERVICE = "registry"
_CLEANUP_TIMEOUT = 60.0


@dataclass(frozen=True)
class UploadLimits:
    max_artifact_bytes: int
    max_requirements_bytes: int


@dataclass(frozen=True)
class ArtifactDownload:
    version: VersionView
    size: int
    chunks: AsyncIterator[bytes]


def _model_not_found(model_id: UUID) -> NotFound:
    return NotFound(f"model {model_id} not found", code="model_not_found")


def _version_not_found(ref: str) -> NotFound:
    return NotFound(f"version {ref!r} not found", code="version_not_found")


async def _cleanup(coro: object, what: str) -> None:
    """Best-effort removal that survives the request being cancelled (client gone)."""
    try:
        await asyncio.shield(asyncio.wait_for(coro, _CLEANUP_TIMEOUT))  # type: ignore[arg-type]
    except Exception:
        log.exception("cleanup failed", extra={"what": what})


class VersionService:
    def __init__(self, uow: UnitOfWorkFactory, store: ArtifactStore, limits: UploadLimits) -> None:
        self.uow = uow
        self.store = store
        self.limits = limits

    # -- upload --------------------------------------------------------------------------------
    async def upload(
        self, owner_id: UUID, model_id: UUID, parts: AsyncIterator[IncomingPart]
    ) -> VersionView:
        try:
            version = await self._upload(owner_id, model_id, parts)
        except KubeServeError as exc:
            UPLOADS.labels("rejected" if exc.http_status < 500 else "failed").inc()
            raise
        except BaseException:
            UPLOADS.labels("interrupted").inc()
            raise
        UPLOADS.labels("stored").inc()
        UPLOADED_BYTES.inc(version.size)
        return VersionView.of(version)

    async def _upload(
        self, owner_id: UUID, model_id: UUID, parts: AsyncIterator[IncomingPart]
    ) -> VersionRecord:
        async with self.uow.reading() as uow:
            model = await ModelRepository(uow.session).get_owned(owner_id, model_id)
        if model is None:
            raise _model_not_found(model_id)
        framework = Framework(model.framework)

        staged: StoredObject | None = None
        filename = ""
        requirements: str | None = None
        key: str | None = None
        try:
            async for part in parts:
                if part.name == MODEL_FIELD:
                    if key is not None:
                        raise ValidationFailed("more than one 'model' file", code="duplicate_field")
                    try:
                        filename = safe_model_filename(part.filename, framework)
                    except FilenameRejected as exc:
                        raise ValidationFailed(str(exc), code="invalid_model_file") from None
                    key = staging_key(owner_id, filename)
                    staged = await self.store.put_stream(
                        key, part.chunks(), max_bytes=self.limits.max_artifact_bytes
                    )
                    if staged.size == 0:
                        raise BadRequest("the 'model' file is empty", code="empty_file")
                elif part.name == REQUIREMENTS_FIELD:
                    if requirements is not None:
                        raise ValidationFailed(
                            "more than one 'requirements' file", code="duplicate_field"
                        )
                    requirements = await self._read_requirements(part)
                else:
                    raise ValidationFailed(
                        f"unexpected form field {part.name!r}: send the model file as 'model' "
                        "and optionally a 'requirements' file",
                        code="unexpected_field",
                    )
            if staged is None:
                raise ValidationFailed(
                    "missing the 'model' file field (multipart/form-data field name 'model')",
                    code="missing_field",
                )
            return await self._commit(model, staged, filename, requirements or "")
        except BaseException:
            if key is not None:
                await _cleanup(self.store.delete(key), "staged upload")
            raise

    async def _read_requirements(self, part: IncomingPart) -> str:
        limit = self.limits.max_requirements_bytes
        data = bytearray()
        async for chunk in part.chunks():
            data += chunk
            if len(data) > limit:
                raise PayloadTooLarge(
                    f"the 'requirements' file exceeds {limit} bytes", code="requirements_too_large"
                )
        try:
            return decode_requirements(bytes(data))
        except ValueError as exc:
            raise ValidationFailed(str(exc), code="invalid_requirements") from None

    async def _commit(
        self, model: ModelRecord, staged: StoredObject, filename: str, requirements: str
    ) -> VersionRecord:
        owner_id, model_id = model.owner_id, model.id
        version_id = uuid.uuid4()
        prefix: str | None = None
        committed = False
        try:
            async with self.uow() as uow:
                number = await ModelRepository(uow.session).allocate_version_number(
                    owner_id, model_id
                )
                if number is None:  # deleted while the bytes were arriving
                    raise _model_not_found(model_id)
                tag = version_tag(number)
                prefix = version_prefix(owner_id, model_id, tag)
                # The tag is ours until commit; anything under it is debris of a crashed attempt.
                await self.store.delete_prefix(prefix)
                artifact_uri = await self.store.move(staged.key, prefix + filename)
                requirements_uri = None
                if requirements:
                    requirements_uri = (
                        await self.store.put_bytes(
                            prefix + REQUIREMENTS_FILENAME,
                            requirements.encode(),
                            content_type="text/plain; charset=utf-8",
                        )
                    ).uri
                now = utcnow()
                version = VersionRecord(
                    id=version_id,
                    model_id=model_id,
                    owner_id=owner_id,
                    number=number,
                    version_tag=tag,
                    status=VersionStatus.BUILDING.value,
                    artifact_uri=artifact_uri,
                    filename=filename,
                    sha256=staged.sha256,
                    size=staged.size,
                    requirements=requirements,
                    requirements_uri=requirements_uri,
                    created_at=now,
                    updated_at=now,
                )
                await VersionRepository(uow.session).add(version)
                payload = VersionUploaded(
                    model_id=model_id,
                    version_id=version_id,
                    version_tag=tag,
                    owner_id=owner_id,
                    framework=model.framework,
                    artifact_uri=artifact_uri,
                    filename=filename,
                    sha256=staged.sha256,
                    size=staged.size,
                    requirements=requirements,
                )
                await uow.publish(
                    CloudEvent.create(
                        payload,
                        service=SERVICE,
                        subject=f"models/{model_id}/versions/{tag}",
                        tenant_id=str(owner_id),
                    )
                )
                try:
                    await uow.commit()
                    committed = True
                except BaseException:
                    # The outcome of a failed COMMIT is unknown: look before deleting anything.
                    committed = await self._exists(owner_id, version_id)
                    if not committed:
                        raise
        except BaseException:
            if prefix is not None and not committed:
                await _cleanup(self.store.delete_prefix(prefix), "uncommitted version")
            raise
        log.info(
            "version uploaded",
            extra={"model_id": str(model_id), "version": tag, "size": staged.size},
        )
        return version

    async def _exists(self, owner_id: UUID, version_id: UUID) -> bool:
        try:
            async with self.uow.reading() as uow:
                found = await VersionRepository(uow.session).get_owned(owner_id, version_id)
            return found is not None
        except Exception:
            return True  # cannot tell: keep the bytes rather than risk a version without them

    # -- reads ---------------------------------------------------------------------------------
    async def list(
        self, owner_id: UUID, model_id: UUID, *, limit: int, offset: int, sort: VersionSort
    ) -> tuple[Sequence[VersionView], int]:
        async with self.uow.reading() as uow:
            if await ModelRepository(uow.session).get_owned(owner_id, model_id) is None:
                raise _model_not_found(model_id)
            records, total = await VersionRepository(uow.session).page(
                owner_id, model_id, limit=limit, offset=offset, sort=sort
            )
            return [VersionView.of(r) for r in records], total

    async def get(self, owner_id: UUID, model_id: UUID, ref: str) -> VersionView:
        async with self.uow.reading() as uow:
            return VersionView.of(await self._get(uow, owner_id, model_id, ref))

    async def _get(
        self, uow: UnitOfWork, owner_id: UUID, model_id: UUID, ref: str, *, for_update: bool = False
    ) -> VersionRecord:
        if await ModelRepository(uow.session).get_owned(owner_id, model_id) is None:
            raise _model_not_found(model_id)
        parsed = parse_version_ref(ref)
        if parsed is None:
            raise _version_not_found(ref)
        version = await VersionRepository(uow.session).get_by_ref(
            owner_id, model_id, parsed, for_update=for_update
        )
        if version is None:
            raise _version_not_found(ref)
        return version

    async def open_artifact(self, owner_id: UUID, model_id: UUID, ref: str) -> ArtifactDownload:
        version = await self.get(owner_id, model_id, ref)
        size, chunks = await self.store.open(self.store.key_for(version.artifact_uri))
        return ArtifactDownload(version, size, chunks)

    async def artifact_url(
        self, owner_id: UUID, model_id: UUID, ref: str, *, expires_in: int
    ) -> str | None:
        version = await self.get(owner_id, model_id, ref)
        key = self.store.key_for(version.artifact_uri)
        return await self.store.presigned_url(key, expires_in=expires_in)

    # -- delete --------------------------------------------------------------------------------
    async def delete(self, owner_id: UUID, model_id: UUID, ref: str) -> None:
        async with self.uow() as uow:
            version = await self._get(uow, owner_id, model_id, ref, for_update=True)
            if await DeploymentRepository(uow.session).version_is_deployed(owner_id, version.id):
                raise Conflict(
                    f"version {version.version_tag} is deployed; delete its deployment first",
                    code="version_deployed",
                )
            await VersionRepository(uow.session).delete(version)
            await uow.commit()
        await _cleanup(
            self.store.delete_prefix(version_prefix(owner_id, model_id, version.version_tag)),
            "deleted version's artifacts",
        )

    # -- build results (consumers; the caller's unit of work holds the inbox claim) -----------
    async def apply_built(self, uow: UnitOfWork, event: VersionBuilt) -> bool:
        """Building -> Ready. False when ignored: unknown/deleted version, or not Building any
        more (a duplicate, or a result arriving after another one already settled it)."""
        version = await self._for_result(uow, event.owner_id, event.model_id, event.version_id)
        BUILD_RESULTS.labels("ready", "ignored" if version is None else "applied").inc()
        if version is None:
            return False
        now = utcnow()
        version.status = VersionStatus.READY.value
        version.signature = event.signature
        version.dependency_plan = event.dependency_plan
        version.predicted_cold_start_ms = event.predicted_cold_start_ms
        version.wheelhouse_uri = event.wheelhouse_uri
        version.report_uri = event.report_uri
        version.failure_stage = version.failure_reason = None
        version.built_at = version.updated_at = now
        await uow.session.flush()
        return True

    async def apply_build_failed(self, uow: UnitOfWork, event: VersionBuildFailed) -> bool:
        version = await self._for_result(uow, event.owner_id, event.model_id, event.version_id)
        BUILD_RESULTS.labels("failed", "ignored" if version is None else "applied").inc()
        if version is None:
            return False
        version.status = VersionStatus.FAILED.value
        version.failure_stage = event.stage[:64]
        version.failure_reason = event.reason
        version.report_uri = event.report_uri
        version.updated_at = utcnow()
        await uow.session.flush()
        return True

    async def _for_result(
        self, uow: UnitOfWork, owner_id: UUID, model_id: UUID, version_id: UUID
    ) -> VersionRecord | None:
        version = await VersionRepository(uow.session).get_by_ref(
            owner_id, model_id, version_id, for_update=True
        )
        if version is None or version.status != VersionStatus.BUILDING.value:
            log.info(
                "build result ignored",
                extra={
                    "version_id": str(version_id),
                    "status": version.status if version else "missing",
                },
            )
            return None
        return version
