"""Tables of the builder schema (declared without a schema; the engine maps them into `builder`).

`builds` is the build queue and its history: one row per version (a duplicate VersionUploaded
finds the row and adds nothing). A build loop claims `queued` rows (`FOR UPDATE SKIP LOCKED` on
PostgreSQL), holds a lease it renews while it works, and finishes the row in the transaction
that writes the result event to the outbox.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from kubeserve_common.db.base import ServiceTables, new_metadata, utcnow
from sqlalchemy import JSON, Index, Integer, String, Text, Uuid
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(ServiceTables, DeclarativeBase):
    metadata = new_metadata()


metadata = Base.metadata


class BuildRecord(Base):
    __tablename__ = "builds"
    __table_args__ = (
        Index("ix_builds_status_created", "status", "created_at"),
        Index("ix_builds_owner_version", "owner_id", "version_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    version_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True)
    model_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    owner_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    version_tag: Mapped[str] = mapped_column(String(64))
    event_id: Mapped[str] = mapped_column(String(200))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)  # the VersionUploaded data
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    not_before: Mapped[datetime | None] = mapped_column(default=None)
    lease_owner: Mapped[str | None] = mapped_column(String(64), default=None)
    lease_expires_at: Mapped[datetime | None] = mapped_column(default=None)
    heartbeat_at: Mapped[datetime | None] = mapped_column(default=None)
    stage: Mapped[str | None] = mapped_column(String(32), default=None)
    reason: Mapped[str | None] = mapped_column(Text, default=None)
    report_uri: Mapped[str | None] = mapped_column(Text, default=None)
    report: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
