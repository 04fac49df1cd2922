"""Request and response bodies of the registry API."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, TypeVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from kubeserve_registry.domain.models import MODEL_NAME_PATTERN, Framework, VersionStatus

T = TypeVar("T")


class ModelCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        min_length=1,
        max_length=63,
        pattern=MODEL_NAME_PATTERN,
        description="DNS-safe slug: lower-case letters, digits and '-', unique among your models.",
    )
    framework: Framework
    description: str = Field(default="", max_length=2000)


class ModelUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=63, pattern=MODEL_NAME_PATTERN)
    description: str | None = Field(default=None, max_length=2000)


class VersionSummary(BaseModel):
    id: UUID
    version_tag: str
    status: VersionStatus
    created_at: datetime


class ModelRead(BaseModel):
    id: UUID
    name: str
    framework: Framework
    description: str
    created_at: datetime
    updated_at: datetime
    latest_version: VersionSummary | None = None


class ArtifactRead(BaseModel):
    filename: str
    size: int
    sha256: str
    uri: str


class VersionRead(BaseModel):
    id: UUID
    model_id: UUID
    version_tag: str
    number: int
    status: VersionStatus
    artifact: ArtifactRead
    requirements: str
    failure_stage: str | None = None
    failure_reason: str | None = None
    signature: dict[str, Any] | None = None
    dependency_plan: dict[str, Any] | None = None
    predicted_cold_start_ms: float | None = None
    created_at: datetime
    updated_at: datetime
    built_at: datetime | None = None


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int
