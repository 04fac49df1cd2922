"""Response bodies of the builder's read API."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel


class BuildRead(BaseModel):
    version_id: UUID
    model_id: UUID
    version_tag: str
    status: str
    attempts: int
    stage: str | None = None
    reason: str | None = None
    report_uri: str | None = None
    report: dict[str, Any] | None = None
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
