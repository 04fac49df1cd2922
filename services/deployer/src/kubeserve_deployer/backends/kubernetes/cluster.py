"""The Kubernetes API port (what the deployer asks of a cluster) and its kubernetes-asyncio
adapter. Objects are applied with server-side apply under the field manager
`kubeserve-deployer`, so applying the same objects again changes nothing.

`kubernetes_asyncio` is imported when the adapter starts, so a deployer on the local backend
never loads it. Every call carries a timeout; failures become `ClusterError`, classified as
transient (5xx, 409, 429, timeouts, connection errors) or permanent (403, 422, other 4xx).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from kubeserve_deployer.backends.kubernetes.lease import (
    LEASE_API,
    LeaseRecord,
    lease_object,
    record_of,
)
from kubeserve_deployer.backends.kubernetes.release import (
    ClusterEvent,
    ContainerProblem,
    PodState,
    WorkloadState,
)

FIELD_MANAGER = "kubeserve-deployer"

# kind -> (group/version as in apiVersion, plural, namespaced): the kinds provisioning and the
# k8s suite apply. Anything else is refused loudly rather than guessed.
KINDS: dict[str, tuple[str, str, bool]] = {
    "Namespace": ("v1", "namespaces", False),
    "ResourceQuota": ("v1", "resourcequotas", True),
    "LimitRange": ("v1", "limitranges", True),
    "ServiceAccount": ("v1", "serviceaccounts", True),
    "Secret": ("v1", "secrets", True),
    "ConfigMap": ("v1", "configmaps", True),
    "Service": ("v1", "services", True),
    "Pod": ("v1", "pods", True),
    "NetworkPolicy": ("networking.k8s.io/v1", "networkpolicies", True),
    "RoleBinding": ("rbac.authorization.k8s.io/v1", "rolebindings", True),
    "Deployment": ("apps/v1", "deployments", True),
    "Job": ("batch/v1", "jobs", True),
    "Lease": (LEASE_API, "leases", True),
}


class ClusterError(Exception):
    """A failed Kubernetes API call. `transient`: worth retrying as is."""

    def __init__(self, message: str, *, status: int | None = None, transient: bool) -> None:
        super().__init__(message)
        self.status = status
        self.transient = transient


def classify_status(status: int | None) -> bool:
    """True when a call that failed with this HTTP status may succeed if simply retried."""
    if status is None:
        return True  # no answer at all: timeout or connection error
    return status >= 500 or status in (408, 409, 429)


def kind_path(kind: str, namespace: str | None, name: str | None = None) -> str:
    """`/api[s]/{group/version}[/namespaces/{ns}]/{plural}[/{name}]`."""
    if kind not in KINDS:
        raise ClusterError(f"kind {kind!r} is not handled by the deployer", transient=False)
    api_version, plural, namespaced = KINDS[kind]
    base = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
    if namespaced:
        base = f"{base}/namespaces/{namespace}"
    return f"{base}/{plural}" + (f"/{name}" if name is not None else "")


def object_path(obj: dict[str, Any]) -> str:
    kind = obj.get("kind", "")
    if kind in KINDS and obj.get("apiVersion") != KINDS[kind][0]:
        raise ClusterError(f"{kind} must be {KINDS[kind][0]}", transient=False)
    meta = obj["metadata"]
    return kind_path(kind, meta.get("namespace"), meta["name"])


@dataclass(frozen=True)
class PodLogRequest:
    """Which log lines of a pod to read (the `pods/log` parameters we use)."""

    container: str
    follow: bool = False
    since_seconds: int | None = None  # whole seconds back from now
    tail_lines: int | None = None


class KubernetesPort(Protocol):
    async def start(self) -> None:
        """Load the cluster configuration (in-cluster or kubeconfig)."""

    async def close(self) -> None: ...

    async def apply(self, objects: Sequence[dict[str, Any]]) -> None:
        """Server-side apply each object, in order (field manager `kubeserve-deployer`)."""

    async def delete_namespace(self, name: str) -> None:
        """Delete a namespace and everything in it; a missing one is not an error."""

    async def delete(self, kind: str, namespace: str, name: str) -> None:
        """Delete one namespaced object; a missing one is not an error."""

    async def read_lease(self, namespace: str, name: str) -> LeaseRecord | None:
        """The Lease, None when it does not exist."""

    async def write_lease(self, namespace: str, name: str, record: LeaseRecord) -> LeaseRecord:
        """Create the Lease (`record.resource_version` None) or replace the version it was read
        at; a concurrent change fails with a 409 ClusterError. Returns what was stored."""

    async def read_deployment(self, namespace: str, name: str) -> WorkloadState | None:
        """The Deployment's status, None when it does not exist."""

    async def list_pods(self, namespace: str, selector: str) -> list[PodState]:
        """Pods matching a label selector, with their runtime container's state."""

    async def list_warning_events(self, namespace: str, name_prefix: str) -> list[ClusterEvent]:
        """Warning events about objects whose name starts with `name_prefix`."""

    def pod_logs(self, namespace: str, pod: str, request: PodLogRequest) -> AsyncIterator[str]:
        """The container's log lines (without line breaks); with `follow`, until the pod's
        container stops or the caller stops reading."""


def _problem(state: Any) -> ContainerProblem | None:
    if state is None:
        return None
    if state.waiting is not None and state.waiting.reason:
        return ContainerProblem("waiting", state.waiting.reason, state.waiting.message or "")
    if state.terminated is not None:
        t = state.terminated
        return ContainerProblem("terminated", t.reason or "Error", t.message or "", t.exit_code)
    return None


def pod_state(pod: Any) -> PodState:
    """A kubernetes-asyncio V1Pod as the domain's PodState (the runtime container only)."""
    status = pod.status
    conditions = {c.type: c for c in (status.conditions or [])}
    ready = bool(conditions.get("Ready") and conditions["Ready"].status == "True")
    scheduled = conditions.get("PodScheduled")
    unschedulable = None
    if scheduled is not None and scheduled.status == "False":
        unschedulable = (scheduled.reason or "Unschedulable", scheduled.message or "")
    statuses = [c for c in (status.container_statuses or []) if c.name == "runtime"] or list(
        status.container_statuses or []
    )
    problem = last = None
    restarts = 0
    if statuses:
        c = statuses[0]
        restarts = c.restart_count or 0
        problem = _problem(c.state) if not c.ready else None
        last = _problem(c.last_state)
    return PodState(
        name=pod.metadata.name,
        labels=dict(pod.metadata.labels or {}),
        phase=status.phase or "Unknown",
        ready=ready,
        restarts=restarts,
        problem=problem,
        last_termination=last,
        unschedulable=unschedulable,
        uid=pod.metadata.uid,
        created_at=pod.metadata.creation_timestamp,
        ready_at=conditions["Ready"].last_transition_time if ready else None,
    )


def workload_state(deployment: Any) -> WorkloadState:
    status = deployment.status
    return WorkloadState(
        generation=deployment.metadata.generation or 0,
        observed_generation=status.observed_generation or 0,
        replicas=status.replicas or 0,
        updated_replicas=status.updated_replicas or 0,
        ready_replicas=status.ready_replicas or 0,
        available_replicas=status.available_replicas or 0,
        conditions=tuple(
            (c.type, c.status, c.reason or "", c.message or "") for c in (status.conditions or [])
        ),
    )


class KubernetesAsyncioCluster:
    """`KubernetesPort` over kubernetes-asyncio."""

    def __init__(
        self,
        *,
        kubeconfig: Path | None = None,
        context: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.kubeconfig = kubeconfig
        self.context = context
        self.timeout = timeout
        self._api: Any = None

    async def start(self) -> None:
        if self._api is not None:
            return
        from kubernetes_asyncio import client, config  # only the kubernetes backend needs it

        configuration = client.Configuration()
        kubeconfig = self.kubeconfig or (
            Path(os.environ["KUBECONFIG"]) if os.environ.get("KUBECONFIG") else None
        )
        if kubeconfig is not None:
            await config.load_kube_config(
                config_file=str(kubeconfig),
                context=self.context,
                client_configuration=configuration,
            )
        else:
            # The pod's service-account token (refreshed as the kubelet rotates it).
            config.load_incluster_config(  # type: ignore[no-untyped-call]
                client_configuration=configuration
            )
        self._api = client.ApiClient(configuration=configuration)

    async def close(self) -> None:
        if self._api is not None:
            await self._api.close()
            self._api = None

    async def _call(self, what: str, coro: Any) -> Any:
        from kubernetes_asyncio.client.exceptions import ApiException

        try:
            # The request timeout bounds each HTTP exchange; wait_for bounds the whole call
            # (including connection setup) in case a layer ignores it.
            return await asyncio.wait_for(coro, self.timeout + 5)
        except ApiException as exc:
            body = exc.body.decode(errors="replace") if isinstance(exc.body, bytes) else exc.body
            raise ClusterError(
                f"{what}: HTTP {exc.status} {exc.reason}: {str(body or '')[:500]}",
                status=exc.status,
                transient=classify_status(exc.status),
            ) from exc
        except (TimeoutError, OSError) as exc:
            raise ClusterError(f"{what}: {type(exc).__name__}: {exc}", transient=True) from exc
        except Exception as exc:
            if type(exc).__module__.startswith("aiohttp"):
                raise ClusterError(f"{what}: {exc}", transient=True) from exc
            raise

    def _require(self) -> Any:
        if self._api is None:
            raise ClusterError("the Kubernetes client is not started", transient=True)
        return self._api

    async def _request(
        self,
        what: str,
        method: str,
        path: str,
        *,
        body: dict[str, Any] | None = None,
        query: list[tuple[str, str]] | None = None,
        content_type: str = "application/json",
    ) -> Any:
        """One raw API call answering a JSON object (any kind, no model classes needed)."""
        api = self._require()
        return await self._call(
            what,
            api.call_api(
                path,
                method,
                query_params=query or [],
                header_params={"Content-Type": content_type, "Accept": "application/json"},
                body=body,
                response_types_map={200: "object", 201: "object", 202: "object"},
                auth_settings=["BearerToken"],
                _return_http_data_only=True,
                _request_timeout=self.timeout,
            ),
        )

    async def apply(self, objects: Sequence[dict[str, Any]]) -> None:
        for obj in objects:
            await self._request(
                f"apply {obj['kind']}/{obj['metadata']['name']}",
                "PATCH",
                object_path(obj),
                body=obj,
                query=[("fieldManager", FIELD_MANAGER), ("force", "true")],
                content_type="application/apply-patch+yaml",
            )

    async def delete(self, kind: str, namespace: str, name: str) -> None:
        try:
            await self._request(
                f"delete {kind}/{name} in {namespace}", "DELETE", kind_path(kind, namespace, name)
            )
        except ClusterError as exc:
            if exc.status != 404:
                raise

    async def read_lease(self, namespace: str, name: str) -> LeaseRecord | None:
        try:
            lease = await self._request(
                f"read lease {namespace}/{name}", "GET", kind_path("Lease", namespace, name)
            )
        except ClusterError as exc:
            if exc.status == 404:
                return None
            raise
        return record_of(lease)

    async def write_lease(self, namespace: str, name: str, record: LeaseRecord) -> LeaseRecord:
        body = lease_object(namespace, name, record)
        if record.resource_version is None:
            stored = await self._request(
                f"create lease {namespace}/{name}", "POST", kind_path("Lease", namespace), body=body
            )
        else:
            stored = await self._request(
                f"replace lease {namespace}/{name}",
                "PUT",
                kind_path("Lease", namespace, name),
                body=body,
            )
        return record_of(stored)

    async def delete_namespace(self, name: str) -> None:
        from kubernetes_asyncio import client

        core = client.CoreV1Api(self._require())
        try:
            await self._call(
                f"delete namespace {name}",
                core.delete_namespace(
                    name, propagation_policy="Background", _request_timeout=self.timeout
                ),
            )
        except ClusterError as exc:
            if exc.status != 404:
                raise

    async def read_deployment(self, namespace: str, name: str) -> WorkloadState | None:
        from kubernetes_asyncio import client

        apps = client.AppsV1Api(self._require())
        try:
            deployment = await self._call(
                f"read deployment {namespace}/{name}",
                apps.read_namespaced_deployment_status(
                    name, namespace, _request_timeout=self.timeout
                ),
            )
        except ClusterError as exc:
            if exc.status == 404:
                return None
            raise
        return workload_state(deployment)

    async def list_pods(self, namespace: str, selector: str) -> list[PodState]:
        from kubernetes_asyncio import client

        core = client.CoreV1Api(self._require())
        pods = await self._call(
            f"list pods in {namespace}",
            core.list_namespaced_pod(
                namespace, label_selector=selector, _request_timeout=self.timeout
            ),
        )
        return [pod_state(p) for p in pods.items]

    async def list_warning_events(self, namespace: str, name_prefix: str) -> list[ClusterEvent]:
        from kubernetes_asyncio import client

        core = client.CoreV1Api(self._require())
        events = await self._call(
            f"list events in {namespace}",
            core.list_namespaced_event(
                namespace, field_selector="type=Warning", _request_timeout=self.timeout
            ),
        )
        return [
            ClusterEvent(
                object_kind=e.involved_object.kind or "",
                object_name=e.involved_object.name or "",
                reason=e.reason or "",
                message=e.message or "",
                count=e.count or 1,
            )
            for e in events.items
            if (e.involved_object.name or "").startswith(name_prefix)
        ]

    async def pod_logs(
        self, namespace: str, pod: str, request: PodLogRequest
    ) -> AsyncIterator[str]:
        import aiohttp
        from kubernetes_asyncio import client

        core = client.CoreV1Api(self._require())
        options = {k: v for k, v in asdict(request).items() if v is not None}
        follow = request.follow
        # Connecting is bounded; a followed stream may then stay quiet for as long as the pod is.
        timeout = aiohttp.ClientTimeout(
            total=None if follow else self.timeout * 3,
            sock_connect=self.timeout,
            sock_read=None if follow else self.timeout,
        )
        response = await self._call(
            f"read the log of pod {namespace}/{pod}",
            core.read_namespaced_pod_log(
                pod, namespace, _preload_content=False, _request_timeout=timeout, **options
            ),
        )
        try:
            pending = b""
            async for chunk in response.content.iter_any():
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    yield line.decode("utf-8", errors="replace").rstrip("\r")
            if pending:
                yield pending.decode("utf-8", errors="replace").rstrip("\r")
        finally:
            response.release()
