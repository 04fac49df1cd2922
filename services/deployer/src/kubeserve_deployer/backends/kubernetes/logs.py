"""Replica logs of the kubernetes backend: the runtime container's log of each pod of the
deployment's release, read through the Kubernetes API (`pods/log`). Replica N is the N-th pod
by name among the release's pods at the time of the request."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from uuid import UUID

from kubeserve_common.errors import ServiceUnavailable

from kubeserve_deployer.adapters.logs import merge
from kubeserve_deployer.backends.kubernetes.cluster import (
    ClusterError,
    KubernetesPort,
    PodLogRequest,
)
from kubeserve_deployer.backends.kubernetes.release import release_name
from kubeserve_deployer.backends.kubernetes.tenancy import namespace_for
from kubeserve_deployer.domain.logs import LogLine, LogQuery

RUNTIME_CONTAINER = "runtime"  # charts/model-serving's container


class KubernetesLogSource:
    def __init__(self, kube: KubernetesPort, namespace_prefix: str, *, tick: float = 15.0) -> None:
        self.kube = kube
        self.namespace_prefix = namespace_prefix
        self.tick = tick

    async def _pods(self, owner_id: UUID, deployment_id: UUID) -> tuple[str, list[str]]:
        namespace = namespace_for(owner_id, self.namespace_prefix)
        try:
            pods = await self.kube.list_pods(
                namespace, f"app.kubernetes.io/instance={release_name(deployment_id)}"
            )
        except ClusterError as exc:
            raise _translate(exc) from exc
        return namespace, sorted(p.name for p in pods)

    async def replicas(self, owner_id: UUID, deployment_id: UUID) -> list[int]:
        _, names = await self._pods(owner_id, deployment_id)
        return list(range(len(names)))

    async def stream(
        self, owner_id: UUID, deployment_id: UUID, replicas: Sequence[int], query: LogQuery
    ) -> AsyncIterator[LogLine | None]:
        namespace, names = await self._pods(owner_id, deployment_id)
        since_seconds = None
        if query.since is not None:
            # The API takes whole seconds back from now; round up so nothing asked is missing.
            since_seconds = max(1, math.ceil((datetime.now(UTC) - query.since).total_seconds()))
        streams = [
            self._lines(namespace, names[i], i, query, since_seconds)
            for i in replicas
            if i < len(names)
        ]
        async for line in merge(streams, tick=self.tick):
            yield line

    async def _lines(
        self, namespace: str, pod: str, replica: int, query: LogQuery, since_seconds: int | None
    ) -> AsyncIterator[LogLine]:
        request = PodLogRequest(RUNTIME_CONTAINER, query.follow, since_seconds, query.tail)
        lines = self.kube.pod_logs(namespace, pod, request)
        try:
            async for text in lines:
                yield LogLine(replica=replica, text=text, pod=pod)
        except ClusterError as exc:
            if exc.status in (400, 404):
                return  # the pod went away (or its container has not started): nothing to show
            raise _translate(exc) from exc


def _translate(exc: ClusterError) -> Exception:
    if exc.transient:
        return ServiceUnavailable(
            "the Kubernetes API is unavailable; try again shortly", headers={"Retry-After": "5"}
        )
    return ServiceUnavailable(f"the Kubernetes API refused to list the pods: {exc}")
