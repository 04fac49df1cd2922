"""Request and response bodies of the deployer API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Generic, TypeVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StrictInt

T = TypeVar("T")

# Strict: "2", 2.5 or true are refused (422) rather than coerced into a replica count.
Replicas = Annotated[StrictInt, Field(ge=1, le=100, description="Number of replicas (>= 1).")]
Name = Annotated[
    str,
    Field(
        min_length=1,
        max_length=63,
        pattern=r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$",
        description="Lower-case letters, digits and dashes; also the model name in OIP URLs.",
    ),
]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DeploymentCreate(_Body):
    version_id: UUID
    replicas: Replicas = 1
    name: Name | None = None


class DeploymentUpdate(_Body):
    replicas: Replicas | None = None
    version_id: UUID | None = Field(
        default=None, description="Move to another Ready version of the same model."
    )


class RollbackRequest(_Body):
    revision: StrictInt | None = Field(
        default=None, ge=1, description="Revision to return to; default: the previous one."
    )


class ReplicaCounts(BaseModel):
    desired: int
    ready: int


class EventRead(BaseModel):
    at: datetime
    kind: str
    message: str


class RevisionRead(BaseModel):
    revision: int
    version_id: UUID
    version_tag: str
    replicas: int
    reason: str
    created_at: datetime


class ReplicaRead(BaseModel):
    revision: int
    index: int
    status: str
    restarts: int
    last_error: str | None
    started_at: datetime | None
    ready_at: datetime | None


class DeploymentRead(BaseModel):
    id: UUID
    name: str
    owner_id: UUID
    model_id: UUID
    version_id: UUID
    version_tag: str | None
    status: str
    revision: int
    serving_revision: int | None
    replicas: ReplicaCounts
    url: str
    failure_reason: str | None
    cold_start: dict[str, float] | None = Field(
        default=None, description="Phase timings (ms) of the last rollout's cold start."
    )
    created_at: datetime
    updated_at: datetime
    events: list[EventRead] = Field(default_factory=list)
    revisions: list[RevisionRead] = Field(default_factory=list)
    replica_details: list[ReplicaRead] = Field(
        default_factory=list, description="Replicas as the runtime backend last saw them."
    )


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int


class RouteRead(BaseModel):
    """For the gateway: where to send predictions of a deployment."""

    deployment_id: UUID
    owner_id: UUID
    status: str
    revision: int
    ready_replicas: int
    endpoints: list[str]
