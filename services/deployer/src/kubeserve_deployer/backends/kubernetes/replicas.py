"""A release's pods as the deployer's replica views: status, restarts, the last problem and,
for the cold-start estimator, each pod's uid and created -> Ready time. Pure."""

from __future__ import annotations

from collections import defaultdict
from uuid import UUID

from kubeserve_deployer.backends.kubernetes.release import PodState
from kubeserve_deployer.domain.deployments import ReplicaStatus, ReplicaView


def replica_views(deployment_id: UUID, endpoint: str, pods: list[PodState]) -> list[ReplicaView]:
    """One view per pod, numbered per revision (ready pods first). Every ready pod's endpoint
    is the Service URL (`endpoint`): the Service balances across pods, and NetworkPolicies let
    no one reach pod IPs directly."""
    by_revision: dict[int, list[PodState]] = defaultdict(list)
    for pod in pods:
        if pod.revision is not None:
            by_revision[pod.revision].append(pod)
    views = []
    for revision, group in sorted(by_revision.items()):
        for index, pod in enumerate(sorted(group, key=lambda p: (not p.ready, p.name))):
            if pod.ready:
                status = ReplicaStatus.READY
            elif pod.problem is not None and (
                pod.problem.reason == "CrashLoopBackOff" or pod.problem.state == "terminated"
            ):
                status = ReplicaStatus.CRASHED
            else:
                status = ReplicaStatus.STARTING
            problem = pod.problem or pod.last_termination
            took = pod.cold_start_ms()
            views.append(
                ReplicaView(
                    deployment_id=deployment_id,
                    revision=revision,
                    index=index,
                    status=status,
                    endpoint=endpoint if pod.ready else None,
                    restarts=pod.restarts,
                    launcher="kubernetes",  # the replicas table holds 16 characters
                    last_error=(
                        f"{problem.reason}: {problem.message}".rstrip(": ")[:500]
                        if problem is not None
                        else None
                    ),
                    ever_ready=pod.ready,
                    start_id=pod.uid,
                    timings={"pod_ready_ms": took} if took is not None else None,
                )
            )
    return views
