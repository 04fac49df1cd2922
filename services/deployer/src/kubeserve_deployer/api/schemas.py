"""Request and response bodies of the deployer API. The internal routes' bodies (route lookup,
serving list, load report) are the contract shared with the gateway, in
`kubeserve_common.contracts.deployer`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Generic, TypeVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, model_validator

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


class AutoscalingSettings(_Body):
    """Concurrency autoscaling (Knative's KPA model): replicas = ceil(requests in flight /
    target_concurrency), within min..max and the tenant quota."""

    min_replicas: Annotated[
        StrictInt, Field(ge=0, le=100, description="0 opts in to scale to zero.")
    ] = 1
    max_replicas: Annotated[StrictInt, Field(ge=1, le=100)] = 3
    target_concurrency: Annotated[
        StrictInt | StrictFloat,
        Field(gt=0, le=1000, description="Requests in flight one replica should carry."),
    ] = 2
    scale_to_zero_after_s: Annotated[
        StrictInt | StrictFloat | None,
        Field(ge=1, le=86_400, description="Idle seconds before 0 replicas (min_replicas 0)."),
    ] = None

    @model_validator(mode="after")
    def _consistent(self) -> AutoscalingSettings:
        if self.min_replicas > self.max_replicas:
            raise ValueError(
                f"min_replicas ({self.min_replicas}) must not exceed max_replicas "
                f"({self.max_replicas})"
            )
        if self.scale_to_zero_after_s is not None and self.min_replicas != 0:
            raise ValueError("scale_to_zero_after_s needs min_replicas 0 (scale to zero)")
        return self


class DeploymentCreate(_Body):
    version_id: UUID
    replicas: Replicas | None = Field(
        default=None, description="A fixed replica count (default 1); or give `autoscaling`."
    )
    autoscaling: AutoscalingSettings | None = None
    name: Name | None = None

    @model_validator(mode="after")
    def _one_way(self) -> DeploymentCreate:
        if "replicas" in self.model_fields_set and self.replicas is None:
            raise ValueError("replicas must be a whole number >= 1 (or leave it out)")
        if self.replicas is not None and self.autoscaling is not None:
            raise ValueError("give either `replicas` (a fixed count) or `autoscaling`, not both")
        return self


class DeploymentUpdate(_Body):
    replicas: Replicas | None = Field(
        default=None, description="A fixed count (turns autoscaling off)."
    )
    autoscaling: AutoscalingSettings | None = Field(
        default=None, description="Turn autoscaling on, or change its settings."
    )
    version_id: UUID | None = Field(
        default=None, description="Move to another Ready version of the same model."
    )

    @model_validator(mode="after")
    def _one_way(self) -> DeploymentUpdate:
        if self.replicas is not None and self.autoscaling is not None:
            raise ValueError("give either `replicas` (a fixed count) or `autoscaling`, not both")
        return self


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


BackendName = Annotated[str, Field(description="local-warm-pool, local-process or kubernetes-pod.")]


class ReplicaColdStartRead(BaseModel):
    """One replica's measured cold start. `phases_ms` holds the phases its backend measures
    apart (start, dependencies, model_load, first_ready); `total_ms` is the whole start, from
    the start request to the first successful health check (a pod: created to Ready)."""

    backend: BackendName
    phases_ms: dict[str, float]
    total_ms: float


class PredictionRead(BaseModel):
    """A predicted cold start on one backend, from the phases the deployer measured before
    (median of the recent starts per phase, scaled by the version's trial load time and
    wheelhouse size). `calibrated`: each phase the backend measures has at least 3
    observations; until then the figure leans on built-in priors."""

    backend: BackendName
    total_ms: float
    phases_ms: dict[str, float]
    calibrated: bool
    observations: int = Field(description="The fewest observations behind any measured phase.")
    label: str = Field(description='"calibrated" or "estimate, not yet calibrated".')


class ReplicaRead(BaseModel):
    revision: int
    index: int
    status: str
    restarts: int
    last_error: str | None
    started_at: datetime | None
    ready_at: datetime | None
    backend: BackendName | None = Field(
        default=None, description="Where it runs: the local warm pool, a plain process, a pod."
    )
    cold_start: ReplicaColdStartRead | None = Field(
        default=None, description="Its measured cold start, once it was ready."
    )


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
    autoscaling: AutoscalingSettings | None = Field(
        default=None, description="Null: a fixed replica count."
    )
    url: str
    failure_reason: str | None
    cold_start: dict[str, float] | None = Field(
        default=None, description="Phase timings (ms) of the last rollout's cold start."
    )
    predicted_cold_start: PredictionRead | None = Field(
        default=None, description="The next replica's predicted cold start on its backend."
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


class ColdStartRead(BaseModel):
    """`GET /cold-start?version_id=`: a version's predicted cold start on every backend."""

    version_id: UUID
    predicted_cold_start_ms: dict[str, float] = Field(description="Backend -> total (ms).")
    predictions: list[PredictionRead]
