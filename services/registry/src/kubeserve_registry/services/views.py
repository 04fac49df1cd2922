"""What the registry's use cases return: frozen views of models and versions, mapped from the
ORM records once, inside the unit of work (CONTRIBUTING.md: services never hand out records)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from kubeserve_registry.domain.models import Framework, VersionStatus
from kubeserve_registry.repositories.orm import ModelRecord, VersionRecord


@dataclass(frozen=True)
class VersionView:
    id: UUID
    model_id: UUID
    version_tag: str
    number: int
    status: VersionStatus
    filename: str
    size: int
    sha256: str
    artifact_uri: str
    requirements: str
    failure_stage: str | None
    failure_reason: str | None
    signature: dict[str, Any] | None
    dependency_plan: dict[str, Any] | None
    predicted_cold_start_ms: float | None
    created_at: datetime
    updated_at: datetime
    built_at: datetime | None

    @classmethod
    def of(cls, v: VersionRecord) -> VersionView:
        return cls(
            id=v.id,
            model_id=v.model_id,
            version_tag=v.version_tag,
            number=v.number,
            status=VersionStatus(v.status),
            filename=v.filename,
            size=v.size,
            sha256=v.sha256,
            artifact_uri=v.artifact_uri,
            requirements=v.requirements,
            failure_stage=v.failure_stage,
            failure_reason=v.failure_reason,
            signature=v.signature,
            dependency_plan=v.dependency_plan,
            predicted_cold_start_ms=v.predicted_cold_start_ms,
            created_at=v.created_at,
            updated_at=v.updated_at,
            built_at=v.built_at,
        )


@dataclass(frozen=True)
class ModelView:
    id: UUID
    name: str
    framework: Framework
    description: str
    created_at: datetime
    updated_at: datetime
    latest: VersionView | None

    @classmethod
    def of(cls, m: ModelRecord, latest: VersionRecord | None) -> ModelView:
        return cls(
            id=m.id,
            name=m.name,
            framework=Framework(m.framework),
            description=m.description,
            created_at=m.created_at,
            updated_at=m.updated_at,
            latest=VersionView.of(latest) if latest is not None else None,
        )
