"""How many pods a tenant's releases may run: each deployment's HPA maximum and rollout surge
out of the tenant's pod quota (5), given what its other deployments want now and can reach.
Pure functions; release.py turns them into chart values."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from uuid import UUID

from kubeserve_deployer.backends.kubernetes.settings import KubernetesSettings
from kubeserve_deployer.domain.autoscaling import AutoscalingPolicy
from kubeserve_deployer.domain.deployments import DeploymentSpec


def pod_limits(
    config: KubernetesSettings,
    replicas: int,
    other_pods: int,
    policy: AutoscalingPolicy | None = None,
    other_most: int | None = None,
) -> tuple[int, int]:
    """(the HPA's maximum, the pods this release may run surge included).

    The maximum is what the quota leaves after the other deployments' current replicas
    (`other_pods`), so one deployment may grow into the tenant's free pods. A surge pod is
    granted only when it fits even with every other deployment at its own maximum
    (`other_most`, default `other_pods`): HPAs move replicas between rollouts, and a rollout
    whose surge pod the quota refuses would stall (`maxSurge: 1, maxUnavailable: 0`) until it
    timed out; without one the chart replaces a pod at a time instead. The second value equals
    the first or the first plus one, so it changes (and the release is upgraded) only when the
    quota binds. A deployment with autoscaling settings (`policy`) gets an HPA up to its
    `max_replicas`; without, its replica count is fixed."""
    budget = max(0, config.quota_pods - other_pods)
    most = replicas
    if config.autoscaling_enabled and policy is not None:
        ceiling = min(policy.max_replicas, config.autoscaling_max_replicas)
        most = max(replicas, min(ceiling, budget))
    room = min(budget, config.quota_pods - (other_pods if other_most is None else other_most))
    return most, most + 1 if most + 1 <= room else min(budget, most)


@dataclass(frozen=True)
class OtherPods:
    """Pods of a tenant's other deployments: replicas wanted now, and the most their HPAs
    (bounded as `pod_limits` bounds them) can reach."""

    desired: int = 0
    most: int = 0


def other_pods(
    specs: Iterable[DeploymentSpec], config: KubernetesSettings
) -> dict[UUID, OtherPods]:
    """For each deployment (by id), what its tenant's other deployments take."""
    specs = list(specs)
    desired: dict[UUID, int] = defaultdict(int)
    for spec in specs:
        desired[spec.owner_id] += spec.target.replicas
    most: dict[UUID, int] = {}
    for spec in specs:
        others = desired[spec.owner_id] - spec.target.replicas
        most[spec.deployment_id] = pod_limits(
            config, spec.target.replicas, others, spec.autoscaling
        )[0]
    tenant_most: dict[UUID, int] = defaultdict(int)
    for spec in specs:
        tenant_most[spec.owner_id] += most[spec.deployment_id]
    return {
        spec.deployment_id: OtherPods(
            desired[spec.owner_id] - spec.target.replicas,
            tenant_most[spec.owner_id] - most[spec.deployment_id],
        )
        for spec in specs
    }
