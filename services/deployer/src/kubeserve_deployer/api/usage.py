"""`GET /usage`: the caller's replicas, CPU and memory against the quota, per deployment, and
what a new deployment or a scale-up would need (the numbers the quota's 409 uses)."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from kubeserve_deployer.api.deps import Caller, check_unscoped
from kubeserve_deployer.domain.usage import Resources, UsageReport
from kubeserve_deployer.services.usage import UsageService

router = APIRouter(tags=["usage"])


class ResourcesRead(BaseModel):
    replicas: int
    cpu: float = Field(description="CPU-equivalents.")
    memory_mib: int


class DeploymentUsageRead(BaseModel):
    id: UUID
    name: str
    status: str
    replicas: dict[str, int] = Field(description="`desired` (reserved) and `ready` (running).")
    reserved: ResourcesRead = Field(description="What its desired replicas count against quota.")
    running: ResourcesRead
    autoscaling_max_replicas: int | None
    can_add_replicas: int = Field(
        description="Replicas it could still be scaled up by within the quota (and its "
        "autoscaling maximum), the others staying as they are."
    )


class NeedRead(BaseModel):
    needs: ResourcesRead
    fits: bool
    message: str


class UsageRead(BaseModel):
    quota: ResourcesRead
    in_use: ResourcesRead = Field(
        description="Reserved by your active deployments (their desired replicas): what the "
        "quota check counts."
    )
    running: ResourcesRead = Field(description="Replicas ready right now.")
    available: ResourcesRead
    more_replicas_fit: int = Field(description="Replicas that still fit, all deployments together.")
    new_deployment: NeedRead = Field(description="What a new one-replica deployment needs.")
    scale_up: NeedRead = Field(description="What one more replica of any deployment needs.")
    deployments: list[DeploymentUsageRead]


def _res(r: Resources) -> ResourcesRead:
    return ResourcesRead(replicas=r.replicas, cpu=r.cpu, memory_mib=r.memory_mib)


def _need(report: UsageReport, what: str) -> NeedRead:
    one = report.per_replica
    fits = report.new_deployment_fits
    needs = f"{what} needs 1 replica ({one.cpu:g} CPU, {one.memory_mib} MiB)"
    if fits:
        message = f"{needs}; {report.more_replicas_fit} more fit in your quota"
    else:
        used = report.in_use
        message = (
            f"{needs}, but your quota ({report.quota.replicas} replicas, {report.quota.cpu:g} "
            f"CPU, {report.quota.memory_mib} MiB) is used up: {used.replicas} replicas "
            f"({used.cpu:g} CPU, {used.memory_mib} MiB) are in use"
        )
    return NeedRead(needs=_res(one), fits=fits, message=message)


def usage_read(report: UsageReport) -> UsageRead:
    return UsageRead(
        quota=_res(report.quota),
        in_use=_res(report.in_use),
        running=_res(report.running),
        available=_res(report.available),
        more_replicas_fit=report.more_replicas_fit,
        new_deployment=_need(report, "a new deployment"),
        scale_up=_need(report, "scaling a deployment up by one"),
        deployments=[
            DeploymentUsageRead(
                id=d.deployment.deployment_id,
                name=d.deployment.name,
                status=d.deployment.status,
                replicas={"desired": d.deployment.desired, "ready": d.deployment.ready},
                reserved=_res(d.reserved),
                running=_res(d.running),
                autoscaling_max_replicas=d.deployment.max_replicas,
                can_add_replicas=d.can_add_replicas,
            )
            for d in report.deployments
        ],
    )


def get_usage(request: Request) -> UsageService:
    service: UsageService = request.app.state.container.usage
    return service


@router.get("/usage", response_model=UsageRead, summary="Your usage against your quota")
async def usage(caller: Caller, service: Annotated[UsageService, Depends(get_usage)]) -> UsageRead:
    check_unscoped(caller)
    return usage_read(await service.report(caller))
