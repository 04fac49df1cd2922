"""Tables of the deployer schema (declared without a schema; the engine maps them into `deployer`).

- `versions` and `models`: projections of registry/builder events (the deployer never reads the
  registry's tables);
- `deployments`, `deployment_revisions`, `deployment_events`: what users asked for and what
  happened;
- `replicas`: the local runtime backend's record of each runtime process;
- `cold_start_estimates` and `cold_start_starts`: the calibrated cold-start estimator (issue 18).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from kubeserve_common.db.base import ServiceTables, new_metadata, utcnow
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
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


class ModelProjection(Base):
    """Model names, from `ModelCreated` (used to name a deployment when the user did not)."""

    __tablename__ = "models"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    owner_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    name: Mapped[str] = mapped_column(String(255))
    framework: Mapped[str] = mapped_column(String(32), default="")


class VersionProjection(Base):
    """A version as the deployer knows it. `VersionUploaded` fills the artifact fields,
    `VersionBuilt`/`VersionBuildFailed` the outcome; either may arrive first."""

    __tablename__ = "versions"
    __table_args__ = (Index("ix_versions_owner_model", "owner_id", "model_id"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    owner_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    model_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    version_tag: Mapped[str] = mapped_column(String(32))
    # Uploaded | Ready | Failed (Ready/Failed are final and never downgraded).
    status: Mapped[str] = mapped_column(String(16))
    framework: Mapped[str | None] = mapped_column(String(32), nullable=True)
    artifact_uri: Mapped[str | None] = mapped_column(Text, nullable=True)
    filename: Mapped[str | None] = mapped_column(String(255), nullable=True)
    sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    size: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    requirements: Mapped[str] = mapped_column(Text, default="")
    wheelhouse_uri: Mapped[str | None] = mapped_column(Text, nullable=True)
    signature: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # The builder's build-time guess; the deployer's calibrated estimate uses the two below.
    predicted_cold_start_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    trial_load_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    wheelhouse_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    failure_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class DeploymentRecord(Base):
    __tablename__ = "deployments"
    __table_args__ = (Index("ix_deployments_owner_created", "owner_id", "created_at"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    owner_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    model_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    version_id: Mapped[uuid.UUID] = mapped_column(Uuid)  # of the target revision
    name: Mapped[str] = mapped_column(String(63))
    # Pending | Deploying | Running | Failed | Stopped
    status: Mapped[str] = mapped_column(String(16))
    revision: Mapped[int] = mapped_column(Integer)  # the target revision
    # The last revision that ran with every replica ready: it keeps serving while a newer
    # revision rolls out, and after that rollout failed.
    serving_revision: Mapped[int | None] = mapped_column(Integer, nullable=True)
    desired_replicas: Mapped[int] = mapped_column(Integer)
    # The API's `autoscaling` object ({min_replicas, max_replicas, target_concurrency,
    # scale_to_zero_after_s}); null: `desired_replicas` is a fixed count set by the user.
    autoscaling: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    ready_replicas: Mapped[int] = mapped_column(Integer, default=0)
    url: Mapped[str] = mapped_column(Text)
    endpoints: Mapped[list[str]] = mapped_column(JSON, default=list)
    failure_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    cold_start: Mapped[dict[str, float] | None] = mapped_column(JSON, nullable=True)
    deleting: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(nullable=True)


class RevisionRecord(Base):
    __tablename__ = "deployment_revisions"
    __table_args__ = (
        UniqueConstraint("deployment_id", "revision", name="uq_revisions_deployment_revision"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    deployment_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    revision: Mapped[int] = mapped_column(Integer)
    version_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    version_tag: Mapped[str] = mapped_column(String(32))
    replicas: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(32))  # deploy | update | rollback
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DeploymentEventRecord(Base):
    """What happened to a deployment, newest last (the API shows the most recent ones)."""

    __tablename__ = "deployment_events"
    __table_args__ = (Index("ix_deployment_events_deployment", "deployment_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    deployment_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    kind: Mapped[str] = mapped_column(String(32))
    message: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ReplicaRecord(Base):
    """One runtime process of the local backend. `key` (deployment/revision/index) names it in
    the backend's state directory too, where the process's own pid file is the ground truth."""

    __tablename__ = "replicas"
    __table_args__ = (
        UniqueConstraint("deployment_id", "revision", "index", name="uq_replicas_slot"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    deployment_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    revision: Mapped[int] = mapped_column(Integer)
    index: Mapped[int] = mapped_column(Integer)
    pid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    port: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # Starting | Ready | Crashed | Stopped
    status: Mapped[str] = mapped_column(String(16))
    restarts: Mapped[int] = mapped_column(Integer, default=0)
    launcher: Mapped[str | None] = mapped_column(String(16), nullable=True)  # pool | process
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    started_at: Mapped[datetime | None] = mapped_column(nullable=True)
    ready_at: Mapped[datetime | None] = mapped_column(nullable=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The replica's current start and, once learnt, its measured cold start:
    # {"backend", "phases_ms", "total_ms"}.
    start_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    cold_start: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class ColdStartEstimateRecord(Base):
    """One phase of one backend's running estimate: its most recent normalised samples, oldest
    first (domain/cold_start.py). Written by the reconcile loop under a row lock, read by the
    API on every request, so separate API and worker processes agree."""

    __tablename__ = "cold_start_estimates"

    backend: Mapped[str] = mapped_column(String(32), primary_key=True)
    phase: Mapped[str] = mapped_column(String(32), primary_key=True)
    samples: Mapped[list[float]] = mapped_column(JSON, default=list)
    observations: Mapped[int] = mapped_column(Integer, default=0)  # ever, not only the window
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ColdStartStartRecord(Base):
    """A replica start the estimator learnt (once: its id is the key), with what it measured."""

    __tablename__ = "cold_start_starts"
    __table_args__ = (Index("ix_cold_start_starts_learnt", "learnt_at"),)

    start_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    backend: Mapped[str] = mapped_column(String(32))
    deployment_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    version_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    cold_start: Mapped[dict[str, Any]] = mapped_column(JSON)
    learnt_at: Mapped[datetime] = mapped_column(default=utcnow)
