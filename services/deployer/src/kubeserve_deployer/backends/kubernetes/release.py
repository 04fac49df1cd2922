"""A deployment as a Helm release of charts/model-serving: its name, its values, and how what
the cluster reports (Deployment status, pods, warning events) reads as a rollout outcome. Plain
data and pure functions; the kubernetes backend does the I/O."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from kubeserve_deployer.backends.kubernetes.pods import pod_limits
from kubeserve_deployer.backends.kubernetes.settings import KubernetesSettings
from kubeserve_deployer.backends.kubernetes.tenancy import MODEL_PORT, RUNTIME_SERVICE_ACCOUNT
from kubeserve_deployer.domain.autoscaling import AutoscalingPolicy
from kubeserve_deployer.domain.deployments import (
    DeploymentSpec,
    RevisionTarget,
    runtime_name,
    storable,
)

RELEASE_PREFIX = "kubeserve-"
# The deployment's Service, as the roadmap names it (charts/model-serving renders it so): what
# the gateway proxies to and the Ingress routes to, on port 80.
SERVICE_PREFIX = "model-"
REVISION_LABEL = "kubeserve.io/revision"
# Helm stores a release in a Secret named sh.helm.release.v1.{name}.v{n} (<= 63 characters),
# hence its 53-character limit on release names.
HELM_NAME_MAX = 53


def release_name(deployment_id: UUID) -> str:
    """`kubeserve-{uuid}`: DNS-safe, 46 characters, and recognisably ours when scanning."""
    name = f"{RELEASE_PREFIX}{str(deployment_id).lower()}"
    assert len(name) <= HELM_NAME_MAX
    return name


def deployment_of(release: str) -> UUID | None:
    """The deployment id of one of our releases, None for anyone else's."""
    if not release.startswith(RELEASE_PREFIX):
        return None
    try:
        return UUID(release[len(RELEASE_PREFIX) :])
    except ValueError:
        return None


def split_image(image: str) -> dict[str, str]:
    """`registry/repo:tag` or `repo@sha256:...` as the chart's image values."""
    digest = ""
    if "@" in image:
        image, digest = image.split("@", 1)
    tag = ""
    last = image.rsplit("/", 1)[-1]
    if ":" in last:
        image, tag = image.rsplit(":", 1)
    registry, _, repository = image.partition("/")
    if not repository or ("." not in registry and ":" not in registry and registry != "localhost"):
        registry, repository = "", image  # a Docker Hub or kind-loaded name: no registry part
    return {"registry": registry, "repository": repository, "tag": tag, "digest": digest}


def artifact_prefix(uri: str) -> str:
    """The version's folder (model, requirements.txt, wheelhouse/): start.sh downloads a prefix
    so requirements and wheels come along with the model file."""
    if uri.endswith("/"):
        return uri
    head, sep, _ = uri.rpartition("/")
    # s3://bucket/key...: a folder below the bucket; an object at the bucket's root stays as is.
    return head + "/" if sep and head.count("/") >= 3 else uri


def service_name(deployment_id: UUID) -> str:
    """`model-{uuid}` (42 characters)."""
    return f"{SERVICE_PREFIX}{str(deployment_id).lower()}"


def artifacts_secret_name(deployment_id: UUID) -> str:
    """The Secret holding the presigned URLs of the deployment's revisions (artifacts.py)."""
    return f"{release_name(deployment_id)}-artifacts"


def manifest_key(revision: int) -> str:
    """The Secret key of one revision's manifest: pods of revision N mount only `rN.json`."""
    return f"r{revision}.json"


def hpa_values(
    config: KubernetesSettings, replicas: int, most: int, policy: AutoscalingPolicy | None
) -> dict[str, Any]:
    """The chart's `autoscaling` values. An HPA cannot go below one replica without an alpha
    feature gate, so `min_replicas: 0` runs one pod on Kubernetes (scale to zero is the local
    backend's); nor above its maximum, so a minimum the quota cannot hold now is held at the
    maximum (`most`). The CPU target is the platform's; the concurrency target is rendered as
    a Pods metric only when the cluster serves it (prometheus-adapter, docs/kubernetes.md)."""
    enabled = config.autoscaling_enabled and policy is not None
    values: dict[str, Any] = {
        "enabled": enabled,
        "minReplicas": min(max(1, policy.min_replicas), most) if policy and enabled else replicas,
        "maxReplicas": most,
        "targetCPUUtilizationPercentage": config.autoscaling_target_cpu,
    }
    if enabled and policy is not None and config.autoscaling_concurrency_metric:
        values["concurrency"] = {
            "metric": config.autoscaling_concurrency_metric,
            "target": f"{policy.target_concurrency:g}",
        }
    return values


def chart_values(
    spec: DeploymentSpec,
    target: RevisionTarget,
    config: KubernetesSettings,
    *,
    other_pods: int = 0,
    other_most: int | None = None,
) -> dict[str, Any]:
    """Values of charts/model-serving for one revision (checked by its values.schema.json).
    `other_pods`: what the owner's other deployments want, `other_most`: the most their HPAs
    reach (pods.pod_limits); the chart bounds this one's HPA and rollout surge by what the
    tenant's quota leaves (`quota.pods`)."""
    tenant = str(spec.owner_id).lower()
    deployment = str(spec.deployment_id).lower()
    most, pods = pod_limits(config, target.replicas, other_pods, spec.autoscaling, other_most)
    values: dict[str, Any] = {
        "deploymentId": deployment,
        "tenant": tenant,
        "model": {
            "name": runtime_name(spec.name),
            "version": target.version_tag,
            "uri": artifact_prefix(target.artifact_uri),
            "wheelhouseUri": target.wheelhouse_uri or "",
        },
        # No object-store credentials: the pod downloads its own version through the presigned
        # URLs of this manifest, and can read nothing else.
        "artifacts": {
            "secretName": artifacts_secret_name(spec.deployment_id),
            "key": manifest_key(target.revision),
        },
        "image": {**split_image(config.runtime_image), "pullPolicy": config.image_pull_policy},
        "runtime": {"port": MODEL_PORT},
        "replicaCount": target.replicas,
        "quota": {"pods": pods},
        "autoscaling": hpa_values(config, target.replicas, most, spec.autoscaling),
        "resources": {
            "requests": {
                "cpu": config.replica_cpu_request,
                "memory": config.replica_memory_request,
            },
            "limits": {"cpu": config.replica_cpu_limit, "memory": config.replica_memory_limit},
        },
        "serviceAccountName": RUNTIME_SERVICE_ACCOUNT,
        "automountServiceAccountToken": False,
        # Pods say which KubeServe revision they run: the backend counts ready pods per
        # revision while the Deployment rolls from one to the next.
        "podLabels": {REVISION_LABEL: str(target.revision)},
        "ingress": {
            "enabled": config.ingress_enabled,
            "className": config.ingress_class_name,
            "hostname": config.ingress_hostname,
            "tls": {
                "enabled": bool(config.ingress_tls_secret),
                "secretName": config.ingress_tls_secret,
            },
        },
        "serviceMonitor": {
            "enabled": config.service_monitor,
            "labels": dict(config.service_monitor_labels),
        },
    }
    if config.ingress_auth_url:
        values["ingress"]["auth"] = {"url": config.ingress_auth_url}
    return values


def autoscaling_note(values: dict[str, Any], policy: AutoscalingPolicy | None) -> str:
    """What the release makes of the deployment's autoscaling settings, for its activity: the
    HPA's bounds, and where they differ from the settings, why."""
    hpa = values["autoscaling"]
    if not hpa["enabled"] or policy is None:
        return ""
    note = f"; HPA {hpa['minReplicas']}-{hpa['maxReplicas']} replicas"
    if policy.min_replicas == 0:
        note += (
            " (min_replicas 0 runs 1 pod on Kubernetes: an HPA cannot scale to zero, so "
            "requests are never held for a cold start here; scale to zero is the local "
            "backend's)"
        )
    if hpa["maxReplicas"] < policy.max_replicas:
        note += (
            f" (max_replicas {policy.max_replicas} held at {hpa['maxReplicas']}: the platform's "
            "cap, or what the tenant's pod quota leaves after its other deployments)"
        )
    if hpa["minReplicas"] < max(1, policy.min_replicas):
        note += f" (min_replicas {policy.min_replicas} held at {hpa['minReplicas']} likewise)"
    return note


def values_digest(values: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:16]


def service_url(deployment_id: UUID, namespace: str) -> str:
    """The in-cluster URL of the deployment's Service `model-{id}` (port 80 -> the runtime)."""
    return f"http://{service_name(deployment_id)}.{namespace}.svc.cluster.local"


def ingress_url(deployment_id: UUID, config: KubernetesSettings) -> str | None:
    if not config.ingress_enabled:
        return None
    scheme = "https" if config.ingress_tls_secret else "http"
    host = config.ingress_hostname or "<ingress-address>"
    return f"{scheme}://{host}/api/v1/predict/{str(deployment_id).lower()}"


# -- what the cluster reports --------------------------------------------------------------------


@dataclass(frozen=True)
class WorkloadState:
    """The Deployment of a release (apps/v1 status)."""

    generation: int
    observed_generation: int
    replicas: int
    updated_replicas: int
    ready_replicas: int
    available_replicas: int
    # (type, status, reason, message) of each condition
    conditions: tuple[tuple[str, str, str, str], ...] = ()

    def condition(self, kind: str) -> tuple[str, str, str] | None:
        for c_type, status, reason, message in self.conditions:
            if c_type == kind:
                return status, reason, message
        return None


@dataclass(frozen=True)
class ContainerProblem:
    state: str  # waiting | terminated
    reason: str  # CrashLoopBackOff, ImagePullBackOff, OOMKilled, Error...
    message: str = ""  # a terminated one's is its termination log: the tenant's model writes it
    exit_code: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "message", storable(self.message))


@dataclass(frozen=True)
class PodState:
    name: str
    labels: dict[str, str]
    phase: str
    ready: bool
    restarts: int = 0
    # Current problem of the runtime container, and why it last terminated (OOMKilled...).
    problem: ContainerProblem | None = None
    last_termination: ContainerProblem | None = None
    # PodScheduled=False: (reason, message), e.g. ("Unschedulable", "0/3 nodes ... cpu")
    unschedulable: tuple[str, str] | None = None
    # The pod's uid, when the API created it and when its Ready condition last turned True:
    # a pod's cold start, measured by the cluster (so also across deployer restarts).
    uid: str | None = None
    created_at: datetime | None = None
    ready_at: datetime | None = None

    def cold_start_ms(self) -> float | None:
        """Created to Ready, for a pod that became ready at its first try (a restarted
        container's or a pod's later Ready says nothing about a cold start)."""
        if not self.ready or self.restarts or self.created_at is None or self.ready_at is None:
            return None
        ms = (self.ready_at - self.created_at).total_seconds() * 1000
        return round(ms, 2) if ms >= 0 else None

    @property
    def revision(self) -> int | None:
        try:
            return int(self.labels.get(REVISION_LABEL, ""))
        except ValueError:
            return None


@dataclass(frozen=True)
class ClusterEvent:
    """A Warning event about an object of the release (pod, ReplicaSet, Deployment)."""

    object_kind: str
    object_name: str
    reason: str
    message: str
    count: int = 1


# Waiting reasons retrying cannot fix without a change by an operator or the user.
FATAL_WAITING = {
    "ErrImagePull": "the runtime image cannot be pulled",
    "ImagePullBackOff": "the runtime image cannot be pulled",
    "InvalidImageName": "the runtime image name is invalid",
    "CreateContainerConfigError": "the runtime container's configuration is invalid",
    "CreateContainerError": "the runtime container cannot be created",
}


@dataclass
class RolloutReading:
    """What a pass concludes about the target revision."""

    ready: int = 0
    fatal: str | None = None  # fail now
    crash_reason: str | None = None  # the reason to give when start failures pile up
    start_failures: int = 0
    blocked: str | None = None  # why pods are missing (quota, scheduling): fatal at the timeout
    details: list[str] = field(default_factory=list)


def _problem_text(p: ContainerProblem) -> str:
    text = p.reason
    if p.exit_code is not None:
        text += f" (exit code {p.exit_code})"
    if p.message:
        text += f": {p.message.strip()[:300]}"
    return text


def read_rollout(
    revision: int,
    workload: WorkloadState | None,
    pods: list[PodState],
    events: list[ClusterEvent],
) -> RolloutReading:
    """Ready pods of `revision` and, when it is not (yet) running, the most telling reason:
    a container state (ImagePullBackOff, CrashLoopBackOff, OOMKilled), a scheduling failure,
    a quota refusal, or the Deployment's progress deadline."""
    reading = RolloutReading()
    mine = [p for p in pods if p.revision == revision]
    reading.ready = sum(1 for p in mine if p.ready)
    for pod in mine:
        if pod.ready:
            continue
        if pod.problem is not None and pod.problem.reason in FATAL_WAITING:
            reading.fatal = (
                f"{FATAL_WAITING[pod.problem.reason]} ({pod.problem.reason}"
                + (f": {pod.problem.message.strip()[:300]}" if pod.problem.message else "")
                + f"; pod {pod.name})"
            )
        if pod.restarts:
            reading.start_failures = max(reading.start_failures, pod.restarts)
            why = pod.last_termination or pod.problem
            if why is not None:
                text = _problem_text(why)
                if pod.last_termination is not None and pod.last_termination.reason == "OOMKilled":
                    text = "OOMKilled: the model needs more memory than the replica's limit"
                if pod.problem is not None and pod.problem.reason == "CrashLoopBackOff":
                    text = f"CrashLoopBackOff, last exit: {text}"
                reading.crash_reason = f"{text} (pod {pod.name}, {pod.restarts} restarts)"
        if pod.unschedulable is not None:
            reason, message = pod.unschedulable
            reading.blocked = f"FailedScheduling: {message or reason}"
    for event in events:
        if event.reason == "FailedCreate" and "exceeded quota" in event.message:
            reading.blocked = f"quota exceeded: {event.message.strip()[:400]}"
        elif event.reason == "FailedScheduling" and reading.blocked is None:
            reading.blocked = f"FailedScheduling: {event.message.strip()[:400]}"
        elif event.reason == "Failed" and "pull" in event.message.lower() and not reading.fatal:
            reading.details.append(event.message.strip()[:300])
    if workload is not None:
        failure = workload.condition("ReplicaFailure")
        if failure is not None and failure[0] == "True" and "exceeded quota" in failure[2]:
            reading.blocked = f"quota exceeded: {failure[2].strip()[:400]}"
        progressing = workload.condition("Progressing")
        if progressing is not None and progressing[1] == "ProgressDeadlineExceeded":
            reading.fatal = reading.fatal or (
                "rollout stalled (ProgressDeadlineExceeded)"
                + (
                    f": {reading.blocked or reading.crash_reason}"
                    if reading.blocked or reading.crash_reason
                    else f": {progressing[2]}"
                )
            )
    return reading
