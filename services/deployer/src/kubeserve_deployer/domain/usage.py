"""A tenant's usage against its quota: what is reserved (the replicas the quota check counts),
what runs, what is left, and what a new deployment or one more replica would need. Pure; the
same numbers `Quota.check` refuses with, so the page and the 409 never disagree."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from kubeserve_deployer.domain.deployments import Quota


@dataclass(frozen=True)
class Resources:
    replicas: int
    cpu: float
    memory_mib: int

    @classmethod
    def of(cls, quota: Quota, replicas: int) -> Resources:
        return cls(
            replicas, round(replicas * quota.replica_cpu, 3), replicas * quota.replica_memory_mib
        )


@dataclass(frozen=True)
class DeploymentUse:
    """One deployment as the quota sees it: `desired` replicas are reserved, `ready` run."""

    deployment_id: UUID
    name: str
    status: str
    desired: int
    ready: int
    max_replicas: int | None = None  # its autoscaling maximum, when autoscaled


@dataclass(frozen=True)
class DeploymentUsage:
    deployment: DeploymentUse
    reserved: Resources
    running: Resources
    # Replicas this deployment could still grow by within the quota (others staying as
    # they are), and what one more replica needs.
    can_add_replicas: int


@dataclass(frozen=True)
class UsageReport:
    quota: Resources
    in_use: Resources  # reserved by active deployments: what the quota check counts
    running: Resources  # replicas ready right now
    available: Resources
    per_replica: Resources
    more_replicas_fit: int  # in new deployments or scale-ups, together
    deployments: list[DeploymentUsage]

    @property
    def new_deployment_fits(self) -> bool:
        return self.more_replicas_fit >= 1


def usage_report(quota: Quota, deployments: list[DeploymentUse]) -> UsageReport:
    reserved = sum(d.desired for d in deployments)
    running = sum(d.ready for d in deployments)
    fit = quota.headroom(reserved)
    limit = Resources(quota.max_replicas, quota.max_cpu, quota.max_memory_mib)
    used = Resources.of(quota, reserved)
    return UsageReport(
        quota=limit,
        in_use=used,
        running=Resources.of(quota, running),
        available=Resources(
            max(0, limit.replicas - used.replicas),
            round(max(0.0, limit.cpu - used.cpu), 3),
            max(0, limit.memory_mib - used.memory_mib),
        ),
        per_replica=Resources.of(quota, 1),
        more_replicas_fit=fit,
        deployments=[
            DeploymentUsage(
                d,
                Resources.of(quota, d.desired),
                Resources.of(quota, d.ready),
                min(fit, max(0, d.max_replicas - d.desired)) if d.max_replicas else fit,
            )
            for d in deployments
        ],
    )
