"""Fakes of the deployer's cluster ports (no Kubernetes API server or helm CLI can run here):
`FakeKubernetes` (an in-memory `KubernetesPort`: applied objects with server-side-apply
semantics, a Deployment and pods simulated from the Helm release's values) and `FakeHelm` (an
in-memory `HelmPort`). Both share one `FakeCluster`, so a new backend instance built on the same
cluster sees what a previous one left - like a deployer restarting against a real cluster.

Failures are injected per call (`fail_next`) or per model version tag (`cluster.modes`):
`ready`, `crashloop`, `oom`, `imagepull`, `quota`, `unschedulable`, `slow` (pods appear but never
get ready). Like the kubelet, pods whose artifacts Secret (or its key for their revision) is
missing never start. Leases follow the API's optimistic concurrency (a write of a stale
resourceVersion is a 409)."""

from __future__ import annotations

import asyncio
import base64
import copy
import dataclasses
import json
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from kubeserve_deployer.backends.kubernetes.cluster import (
    ClusterError,
    PodLogRequest,
    kind_path,
    object_path,
)
from kubeserve_deployer.backends.kubernetes.helm import HelmError, HelmRelease
from kubeserve_deployer.backends.kubernetes.lease import LeaseRecord
from kubeserve_deployer.backends.kubernetes.release import (
    REVISION_LABEL,
    ClusterEvent,
    ContainerProblem,
    PodState,
    WorkloadState,
)


@dataclass
class FakeRelease:
    name: str
    namespace: str
    values: dict[str, Any]
    revision: int = 1
    status: str = "deployed"
    history: list[dict[str, Any]] = field(default_factory=list)  # values of each helm revision


@dataclass
class FakeCluster:
    """The state a real cluster would hold."""

    objects: dict[str, dict[str, Any]] = field(default_factory=dict)  # API path -> object
    releases: dict[tuple[str, str], FakeRelease] = field(default_factory=dict)
    modes: dict[str, str] = field(default_factory=dict)  # model version tag -> behaviour
    # Per release: KubeServe revisions whose pods were all ready once (they keep serving while a
    # newer revision fails to roll out: maxUnavailable 0).
    served: dict[tuple[str, str], int] = field(default_factory=dict)
    restarts: dict[tuple[str, str, int], int] = field(default_factory=lambda: defaultdict(int))
    deleted_namespaces: list[str] = field(default_factory=list)
    leases: dict[tuple[str, str], LeaseRecord] = field(default_factory=dict)
    lease_versions: int = 0
    # (namespace, pod) -> (written at, line) of its runtime container, as the kubelet keeps them
    pod_logs: dict[tuple[str, str], list[tuple[datetime, str]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    log_requests: list[dict[str, Any]] = field(default_factory=list)
    # A ready pod's simulated cold start (created -> Ready) and when each pod was created.
    pod_start: timedelta = timedelta(milliseconds=2500)
    pod_created: dict[tuple[str, str], datetime] = field(default_factory=dict)

    def ready_pod(self, namespace: str, name: str, labels: dict[str, str]) -> PodState:
        """A pod that became Ready `pod_start` after it was created (first listed)."""
        created = self.pod_created.setdefault((namespace, name), datetime.now(UTC))
        return PodState(
            name,
            labels,
            "Running",
            True,
            uid=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{namespace}/{name}")),
            created_at=created,
            ready_at=created + self.pod_start,
        )

    def write_log(self, namespace: str, pod: str, line: str, *, age: float = 0.0) -> None:
        self.pod_logs[(namespace, pod)].append((datetime.now(UTC) - timedelta(seconds=age), line))

    def namespaces(self) -> set[str]:
        return {o["metadata"]["name"] for o in self.objects.values() if o["kind"] == "Namespace"}

    def in_namespace(self, namespace: str) -> list[dict[str, Any]]:
        return [
            o
            for o in self.objects.values()
            if o["metadata"].get("namespace") == namespace
            or (o["kind"] == "Namespace" and o["metadata"]["name"] == namespace)
        ]


class _Failures:
    def __init__(self) -> None:
        self._next: dict[str, list[Exception]] = defaultdict(list)
        self.calls: list[tuple[str, Any]] = []

    def fail_next(self, method: str, error: Exception, times: int = 1) -> None:
        self._next[method].extend([error] * times)

    def _check(self, method: str, args: Any) -> None:
        self.calls.append((method, args))
        if self._next[method]:
            raise self._next[method].pop(0)

    def count(self, method: str) -> int:
        return sum(1 for m, _ in self.calls if m == method)


class FakeKubernetes(_Failures):
    """An in-memory `KubernetesPort`. `apply` has server-side-apply semantics (create or
    update, identical content is no change); `changes` counts real changes."""

    def __init__(self, cluster: FakeCluster) -> None:
        super().__init__()
        self.cluster = cluster
        self.changes = 0
        self.started = False

    async def start(self) -> None:
        self.started = True

    async def close(self) -> None:
        self.started = False

    async def apply(self, objects: list[dict[str, Any]]) -> None:
        for obj in objects:
            self._check("apply", (obj["kind"], obj["metadata"]["name"]))
            namespace = obj["metadata"].get("namespace")
            if namespace is not None and namespace not in self.cluster.namespaces():
                raise ClusterError(
                    f"namespaces {namespace!r} not found", status=404, transient=False
                )
            path = object_path(obj)
            snapshot = json.loads(json.dumps(obj))
            if self.cluster.objects.get(path) != snapshot:
                self.cluster.objects[path] = snapshot
                self.changes += 1

    async def delete_namespace(self, name: str) -> None:
        self._check("delete_namespace", name)
        for path in [
            p for p, o in self.cluster.objects.items() if o in self.cluster.in_namespace(name)
        ]:
            del self.cluster.objects[path]
        for key in [k for k in self.cluster.releases if k[0] == name]:
            del self.cluster.releases[key]
        self.cluster.deleted_namespaces.append(name)

    async def delete(self, kind: str, namespace: str, name: str) -> None:
        self._check("delete", (kind, namespace, name))
        self.cluster.objects.pop(kind_path(kind, namespace, name), None)

    async def read_lease(self, namespace: str, name: str) -> LeaseRecord | None:
        self._check("read_lease", (namespace, name))
        return self.cluster.leases.get((namespace, name))

    async def write_lease(self, namespace: str, name: str, record: LeaseRecord) -> LeaseRecord:
        self._check("write_lease", (namespace, name, record.holder))
        current = self.cluster.leases.get((namespace, name))
        if record.resource_version is None and current is not None:
            raise ClusterError("leases already exists", status=409, transient=True)
        if record.resource_version is not None and (
            current is None or current.resource_version != record.resource_version
        ):
            raise ClusterError("the object has been modified", status=409, transient=True)
        self.cluster.lease_versions += 1
        stored = dataclasses.replace(record, resource_version=str(self.cluster.lease_versions))
        self.cluster.leases[(namespace, name)] = stored
        return stored

    # -- the simulated workload of a release ---------------------------------------------------
    def manifest(self, release: FakeRelease) -> dict[str, Any] | None:
        """The manifest a pod of the release mounts, as the kubelet would find it."""
        artifacts = release.values.get("artifacts") or {}
        secret = self.cluster.objects.get(
            kind_path("Secret", release.namespace, artifacts.get("secretName", ""))
        )
        data = (secret or {}).get("data", {}).get(artifacts.get("key", ""))
        return None if data is None else json.loads(base64.b64decode(data))

    def _release(self, namespace: str, name: str) -> FakeRelease | None:
        return self.cluster.releases.get((namespace, name))

    async def read_deployment(self, namespace: str, name: str) -> WorkloadState | None:
        self._check("read_deployment", (namespace, name))
        release = self._release(namespace, name)
        if release is None:
            return None
        replicas = int(release.values["replicaCount"])
        ready = sum(1 for p in self._pods(release) if p.ready)
        conditions: tuple[tuple[str, str, str, str], ...] = ()
        if self._mode(release) == "quota":
            conditions = (("ReplicaFailure", "True", "FailedCreate", self._quota_message()),)
        return WorkloadState(
            generation=release.revision,
            observed_generation=release.revision,
            replicas=replicas,
            updated_replicas=replicas,
            ready_replicas=ready,
            available_replicas=ready,
            conditions=conditions,
        )

    async def list_pods(self, namespace: str, selector: str) -> list[PodState]:
        self._check("list_pods", (namespace, selector))
        name = selector.split("=", 1)[1]
        release = self._release(namespace, name)
        return [] if release is None else self._pods(release, tick=True)

    async def pod_logs(
        self, namespace: str, pod: str, request: PodLogRequest
    ) -> AsyncIterator[str]:
        """Like `pods/log`: 404 for a pod that does not exist, `sinceSeconds` and `tailLines`
        applied by the server, new lines streamed while following."""
        self._check("pod_logs", (namespace, pod))
        self.cluster.log_requests.append(
            {"namespace": namespace, "pod": pod, **dataclasses.asdict(request)}
        )
        container, follow = request.container, request.follow
        since_seconds, tail_lines = request.since_seconds, request.tail_lines
        if container != "runtime" or not any(
            p.name == pod
            for r in self.cluster.releases.values()
            if r.namespace == namespace
            for p in self._pods(r)
        ):
            raise ClusterError(f"pods {pod!r} not found", status=404, transient=False)
        lines = self.cluster.pod_logs[(namespace, pod)]
        start = datetime.now(UTC) - timedelta(seconds=since_seconds) if since_seconds else None
        shown = [text for at, text in lines if start is None or at >= start]
        if tail_lines is not None:
            shown = shown[-tail_lines:] if tail_lines else []
        for text in shown:
            yield text
        seen = len(lines)
        while follow:
            await asyncio.sleep(0.02)
            for _, text in lines[seen:]:
                yield text
            seen = len(lines)

    async def list_warning_events(self, namespace: str, name_prefix: str) -> list[ClusterEvent]:
        self._check("list_warning_events", (namespace, name_prefix))
        release = self._release(namespace, name_prefix)
        if release is None:
            return []
        mode = self._mode(release)
        rs = f"{release.name}-5d8f7c9b6"
        if mode == "quota":
            return [ClusterEvent("ReplicaSet", rs, "FailedCreate", self._quota_message(), 4)]
        if mode == "unschedulable":
            return [
                ClusterEvent(
                    "Pod",
                    f"{rs}-x1",
                    "FailedScheduling",
                    "0/1 nodes are available: 1 Insufficient cpu.",
                )
            ]
        if mode == "imagepull":
            return [ClusterEvent("Pod", f"{rs}-x1", "Failed", "Failed to pull image: not found")]
        return []

    @staticmethod
    def _quota_message() -> str:
        return (
            'pods "x" is forbidden: exceeded quota: tenant-quota, requested: pods=1, '
            "used: pods=5, limited: pods=5"
        )

    def _mode(self, release: FakeRelease) -> str:
        return self.cluster.modes.get(release.values["model"]["version"], "ready")

    def _pods(self, release: FakeRelease, *, tick: bool = False) -> list[PodState]:
        key = (release.namespace, release.name)
        revision = int(release.values["podLabels"][REVISION_LABEL])
        replicas = int(release.values["replicaCount"])
        mode = self._mode(release)
        if self.manifest(release) is None:
            mode = "no-artifacts"
        base = {
            "app.kubernetes.io/instance": release.name,
            "kubeserve.io/deployment-id": release.values["deploymentId"],
        }
        pods: list[PodState] = []
        if mode == "ready":
            self.cluster.served[key] = revision
        else:
            old = self.cluster.served.get(key)
            if old is not None and old != revision:
                # Rolling update with maxUnavailable 0: the last good pods keep serving.
                pods += [
                    PodState(
                        f"{release.name}-old-{i}",
                        {**base, REVISION_LABEL: str(old)},
                        "Running",
                        True,
                    )
                    for i in range(replicas)
                ]
        labels = {**base, REVISION_LABEL: str(revision)}
        if mode == "no-artifacts":
            # FailedMount: the volume's Secret or key does not exist; the container never starts.
            return pods + [
                PodState(
                    f"{release.name}-r{revision}-{i}",
                    labels,
                    "Pending",
                    False,
                    problem=ContainerProblem("waiting", "ContainerCreating"),
                )
                for i in range(replicas)
            ]
        for i in range(replicas):
            name = f"{release.name}-r{revision}-{i}"
            restarts_key = (release.namespace, release.name, revision)
            if mode == "ready":
                pods.append(self.cluster.ready_pod(release.namespace, name, labels))
            elif mode in ("crashloop", "oom"):
                if tick and i == 0:
                    self.cluster.restarts[restarts_key] += 1
                last = (
                    ContainerProblem("terminated", "OOMKilled", "", 137)
                    if mode == "oom"
                    else ContainerProblem("terminated", "Error", "ModuleNotFoundError: xgboost", 1)
                )
                pods.append(
                    PodState(
                        name,
                        labels,
                        "Running",
                        False,
                        restarts=self.cluster.restarts[restarts_key],
                        problem=ContainerProblem(
                            "waiting",
                            "CrashLoopBackOff",
                            "back-off 40s restarting failed container",
                        ),
                        last_termination=last,
                    )
                )
            elif mode == "imagepull":
                pods.append(
                    PodState(
                        name,
                        labels,
                        "Pending",
                        False,
                        problem=ContainerProblem(
                            "waiting", "ImagePullBackOff", 'Back-off pulling image "bad:tag"'
                        ),
                    )
                )
            elif mode == "unschedulable":
                pods.append(
                    PodState(
                        name,
                        labels,
                        "Pending",
                        False,
                        unschedulable=(
                            "Unschedulable",
                            "0/1 nodes are available: 1 Insufficient cpu.",
                        ),
                    )
                )
            elif mode == "slow":
                pods.append(PodState(name, labels, "Running", False))
            # quota: the ReplicaSet cannot create pods at all
        return pods


class FakeHelm(_Failures):
    """An in-memory `HelmPort`: releases with their values and helm revision history."""

    def __init__(self, cluster: FakeCluster) -> None:
        super().__init__()
        self.cluster = cluster
        self.started = False

    async def start(self) -> None:
        self.started = True

    async def install_or_upgrade(
        self, name: str, namespace: str, values: dict[str, Any], *, description: str = ""
    ) -> HelmRelease:
        self._check("install_or_upgrade", (name, namespace, copy.deepcopy(values)))
        if namespace not in self.cluster.namespaces():
            raise HelmError(f'create: namespaces "{namespace}" not found', transient=False)
        key = (namespace, name)
        release = self.cluster.releases.get(key)
        if release is None:
            release = FakeRelease(name, namespace, copy.deepcopy(values))
        else:
            release.revision += 1
            release.values = copy.deepcopy(values)
            release.status = "deployed"
        release.history.append(copy.deepcopy(values))
        self.cluster.releases[key] = release
        return HelmRelease(name, namespace, release.revision, "deployed", values, description)

    async def rollback(self, name: str, namespace: str, revision: int | None = None) -> None:
        self._check("rollback", (name, namespace, revision))
        release = self.cluster.releases[(namespace, name)]
        target = release.history[(revision or len(release.history) - 1) - 1]
        release.revision += 1
        release.values = copy.deepcopy(target)
        release.history.append(copy.deepcopy(target))
        release.status = "deployed"

    async def uninstall(self, name: str, namespace: str) -> None:
        self._check("uninstall", (name, namespace))
        self.cluster.releases.pop((namespace, name), None)
        self.cluster.served.pop((namespace, name), None)

    async def list_releases(self) -> list[HelmRelease]:
        self._check("list_releases", None)
        return [
            HelmRelease(r.name, r.namespace, r.revision, r.status)
            for r in self.cluster.releases.values()
        ]

    async def status(self, name: str, namespace: str) -> HelmRelease | None:
        self._check("status", (name, namespace))
        r = self.cluster.releases.get((namespace, name))
        if r is None:
            return None
        return HelmRelease(r.name, r.namespace, r.revision, r.status, copy.deepcopy(r.values))
