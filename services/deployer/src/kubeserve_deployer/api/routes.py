"""Deployment routes (the gateway maps `/api/v1/deployments...` here) and the gateway's internal
route lookup. Adapters only: parse, call `DeploymentService`, map the result."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query
from kubeserve_common.contracts.deployer import DeploymentRoute, LoadReport, ServingDeployment
from kubeserve_common.errors import ValidationFailed

from kubeserve_deployer.api.deps import (
    Caller,
    Deployments,
    InternalCaller,
    Load,
    check_scope,
    check_unscoped,
)
from kubeserve_deployer.api.schemas import (
    AutoscalingSettings,
    DeploymentCreate,
    DeploymentRead,
    DeploymentUpdate,
    EventRead,
    Page,
    PredictionRead,
    ReplicaColdStartRead,
    ReplicaCounts,
    ReplicaRead,
    RevisionRead,
    RollbackRequest,
)
from kubeserve_deployer.domain.cold_start import Prediction, backend_for
from kubeserve_deployer.services.deployments import DeploymentView
from kubeserve_deployer.services.serving import serving_deployments

router = APIRouter(prefix="/deployments", tags=["deployments"])
internal = APIRouter(prefix="/internal", tags=["internal"], include_in_schema=False)

Limit = Annotated[int, Query(ge=1, le=100, description="Page size.")]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]


def to_read(view: DeploymentView) -> DeploymentRead:
    d = view.deployment
    return DeploymentRead(
        id=d.id,
        name=d.name,
        owner_id=d.owner_id,
        model_id=d.model_id,
        version_id=d.version_id,
        version_tag=view.version_tag,
        status=d.status,
        revision=d.revision,
        serving_revision=d.serving_revision,
        replicas=ReplicaCounts(desired=d.desired_replicas, ready=d.ready_replicas),
        autoscaling=AutoscalingSettings(**d.autoscaling) if d.autoscaling else None,
        url=d.url,
        failure_reason=d.failure_reason,
        cold_start=d.cold_start,
        created_at=d.created_at,
        updated_at=d.updated_at,
        events=[EventRead(at=e.created_at, kind=e.kind, message=e.message) for e in view.events],
        revisions=[
            RevisionRead(
                revision=r.revision,
                version_id=r.version_id,
                version_tag=r.version_tag,
                replicas=r.replicas,
                reason=r.reason,
                created_at=r.created_at,
            )
            for r in view.revisions
        ],
        replica_details=[
            ReplicaRead(
                revision=r.revision,
                index=r.index,
                status=r.status,
                restarts=r.restarts,
                last_error=r.last_error,
                started_at=r.started_at,
                ready_at=r.ready_at,
                backend=backend_for(r.launcher) if r.launcher else None,
                cold_start=ReplicaColdStartRead.model_validate(r.cold_start)
                if r.cold_start
                else None,
            )
            for r in view.replicas
        ],
        predicted_cold_start=to_prediction_read(view.predicted_cold_start)
        if view.predicted_cold_start
        else None,
    )


def to_prediction_read(p: Prediction) -> PredictionRead:
    return PredictionRead(
        backend=p.backend,
        total_ms=p.total_ms,
        phases_ms=p.phases_ms,
        calibrated=p.calibrated,
        observations=p.observations,
        label=p.label,
    )


@router.post("", status_code=202, response_model=DeploymentRead, summary="Deploy a version")
async def create_deployment(
    body: DeploymentCreate, caller: Caller, deployments: Deployments
) -> DeploymentRead:
    check_unscoped(caller)
    autoscaling = body.autoscaling.model_dump() if body.autoscaling else None
    view = await deployments.create(
        caller.user_id, body.version_id, body.replicas, body.name, autoscaling
    )
    return to_read(view)


@router.get("", response_model=Page[DeploymentRead], summary="List your deployments")
async def list_deployments(
    caller: Caller, deployments: Deployments, limit: Limit = 20, offset: Offset = 0
) -> Page[DeploymentRead]:
    only = None
    if caller.deployment_scope is not None:
        only = [UUID(d) for d in caller.deployment_scope if _is_uuid(d)]
    views, total = await deployments.list(caller.user_id, limit=limit, offset=offset, only=only)
    return Page(items=[to_read(v) for v in views], total=total, limit=limit, offset=offset)


def _is_uuid(text: str) -> bool:
    try:
        UUID(text)
    except ValueError:
        return False
    return True


@router.get("/{deployment_id}", response_model=DeploymentRead, summary="One deployment")
async def get_deployment(
    deployment_id: UUID, caller: Caller, deployments: Deployments
) -> DeploymentRead:
    check_scope(caller, deployment_id)
    return to_read(await deployments.get(caller.user_id, deployment_id))


@router.patch(
    "/{deployment_id}",
    status_code=202,
    response_model=DeploymentRead,
    summary="Scale, autoscale, or move to another version",
)
async def update_deployment(
    deployment_id: UUID, body: DeploymentUpdate, caller: Caller, deployments: Deployments
) -> DeploymentRead:
    check_scope(caller, deployment_id)
    if body.replicas is None and body.version_id is None and body.autoscaling is None:
        raise ValidationFailed(
            "nothing to change: give `replicas`, `autoscaling` and/or `version_id`"
        )
    view = await deployments.update(
        caller.user_id,
        deployment_id,
        replicas=body.replicas,
        version_id=body.version_id,
        autoscaling=body.autoscaling.model_dump() if body.autoscaling else None,
    )
    return to_read(view)


@router.post(
    "/{deployment_id}/rollback",
    status_code=202,
    response_model=DeploymentRead,
    summary="Roll back to a revision (default: the previous one)",
)
async def rollback_deployment(
    deployment_id: UUID,
    caller: Caller,
    deployments: Deployments,
    body: RollbackRequest | None = None,
) -> DeploymentRead:
    check_scope(caller, deployment_id)
    revision = body.revision if body is not None else None
    return to_read(await deployments.rollback(caller.user_id, deployment_id, revision))


@router.delete("/{deployment_id}", status_code=202, response_model=DeploymentRead, summary="Delete")
async def delete_deployment(
    deployment_id: UUID, caller: Caller, deployments: Deployments
) -> DeploymentRead:
    check_scope(caller, deployment_id)
    return to_read(await deployments.delete(caller.user_id, deployment_id))


@internal.get("/deployments/{deployment_id}/route", response_model=DeploymentRoute)
async def deployment_route(
    deployment_id: UUID, _: InternalCaller, deployments: Deployments
) -> DeploymentRoute:
    return await deployments.route(deployment_id)


@internal.post("/load", status_code=204)
async def report_load(body: LoadReport, _: InternalCaller, load: Load) -> None:
    """A gateway's in-flight figures: the autoscaler's signal."""
    load.report(body.gateway, body.in_flight)


@internal.get("/serving", response_model=list[ServingDeployment])
async def serving(_: InternalCaller, deployments: Deployments) -> list[ServingDeployment]:
    """Every live deployment with ready replicas (the gateway's Prometheus discovery)."""
    return await serving_deployments(deployments.uow)
