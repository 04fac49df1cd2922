"""Tables of the registry schema (declared without a schema; the engine maps them into `registry`).

`models.version_seq` is the per-model counter from which version tags are allocated: it is
incremented by a single `UPDATE ... RETURNING` in the transaction that writes the version row, so
concurrent uploads queue on that row lock and a rolled-back upload gives its number back.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from kubeserve_common.db.base import ServiceTables, new_metadata, utcnow
from sqlalchemy import (
    JSON,
    BigInteger,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(ServiceTables, DeclarativeBase):
    metadata = new_metadata()


metadata = Base.metadata


class ModelRecord(Base):
    __tablename__ = "models"
    __table_args__ = (UniqueConstraint("owner_id", "name", name="uq_models_owner_name"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    owner_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    name: Mapped[str] = mapped_column(String(63))
    framework: Mapped[str] = mapped_column(String(20))
    description: Mapped[str] = mapped_column(Text, default="")
    version_seq: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class VersionRecord(Base):
    __tablename__ = "versions"
    __table_args__ = (
        UniqueConstraint("model_id", "number", name="uq_versions_model_number"),
        Index("ix_versions_owner_model", "owner_id", "model_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    model_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("models.id", ondelete="CASCADE"))
    # Denormalised from the model so every version query is scoped by owner directly.
    owner_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    number: Mapped[int] = mapped_column(Integer)
    version_tag: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    artifact_uri: Mapped[str] = mapped_column(Text)
    filename: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    requirements: Mapped[str] = mapped_column(Text, default="")
    requirements_uri: Mapped[str | None] = mapped_column(Text, nullable=True)
    failure_stage: Mapped[str | None] = mapped_column(String(64), nullable=True)
    failure_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    signature: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    dependency_plan: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    predicted_cold_start_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    wheelhouse_uri: Mapped[str | None] = mapped_column(Text, nullable=True)
    report_uri: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    built_at: Mapped[datetime | None] = mapped_column(nullable=True)


class DeploymentRecord(Base):
    """Projection of the deployer's events: which version each live deployment runs (the 409
    rule for deleting deployed versions). A deleted deployment stays as a tombstone so a late,
    redelivered `DeployRequested` cannot bring it back."""

    __tablename__ = "deployments"

    deployment_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    owner_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    model_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    version_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    revision: Mapped[int] = mapped_column(Integer)
    deleted_at: Mapped[datetime | None] = mapped_column(nullable=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
