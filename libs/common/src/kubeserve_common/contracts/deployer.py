"""The deployer's internal routes the gateway calls: `GET /internal/deployments/{id}/route`,
`GET /internal/serving` and `POST /internal/load`. The deployer answers (and parses) with these
models and the gateway parses (and sends) with them, so the two cannot drift apart."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field


def _without_trailing_slash(endpoints: tuple[str, ...]) -> tuple[str, ...]:
    # The gateway appends the request path (`/predict`, `/v2/...`) to an endpoint.
    return tuple(e.rstrip("/") for e in endpoints)


Endpoints = Annotated[
    tuple[str, ...],
    AfterValidator(_without_trailing_slash),
    Field(description="Base URLs of the ready replicas (no trailing slash)."),
]


class DeploymentRoute(BaseModel):
    """For the gateway: where to send predictions of a deployment (looked up by id alone; the
    gateway checks the caller's right to it against `owner_id`)."""

    model_config = ConfigDict(frozen=True)

    deployment_id: UUID
    owner_id: UUID
    status: str
    revision: int
    ready_replicas: int
    endpoints: Endpoints
    scaled_to_zero: bool = Field(
        default=False,
        description="Autoscaled to 0 replicas while idle: hold the request, a replica starts.",
    )
    wake_blocked: str | None = Field(
        default=None,
        description="Scaled to zero and the tenant's quota has no room for a replica: why a "
        "request cannot wake it (answered 503 at once, not held).",
    )


class ServingDeployment(BaseModel):
    """For the gateway's Prometheus discovery: a deployment with ready replicas and the labels
    its metrics are grouped by (tenant, deployment, version)."""

    model_config = ConfigDict(frozen=True)

    deployment_id: UUID
    owner_id: UUID
    name: str
    version: str = Field(
        description="The version tag of the serving revision (`v3`), as the runtime labels it."
    )
    revision: int
    endpoints: Endpoints


class LoadReport(BaseModel):
    """From a gateway, about once a second: the time-weighted average of predictions in flight
    per deployment since its last report (only deployments with load, or whose load changed)."""

    model_config = ConfigDict(extra="forbid")

    gateway: str = Field(min_length=1, max_length=128)
    in_flight: dict[UUID, Annotated[float, Field(ge=0, le=1e6)]] = Field(max_length=10_000)
