"""Deployment states, the quota rule and the desired/observed shapes exchanged with a runtime
backend. Plain dataclasses: no I/O here."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from uuid import UUID

from kubeserve_common.errors import Conflict

from kubeserve_deployer.domain.autoscaling import AutoscalingPolicy


class DeploymentStatus(enum.StrEnum):
    PENDING = "Pending"  # accepted by the API, not yet picked up by the worker
    DEPLOYING = "Deploying"  # the worker is starting the target revision
    RUNNING = "Running"  # every desired replica of the target revision was ready
    FAILED = "Failed"  # the target revision could not start; an older one may still serve
    STOPPED = "Stopped"  # deleted by the user; replicas are stopping or gone


# Statuses whose replicas count against the quota (a failed deployment keeps serving its last
# good revision, so it holds replicas too).
ACTIVE_STATUSES = (
    DeploymentStatus.PENDING,
    DeploymentStatus.DEPLOYING,
    DeploymentStatus.RUNNING,
    DeploymentStatus.FAILED,
)


class VersionStatus(enum.StrEnum):
    UPLOADED = "Uploaded"
    READY = "Ready"
    FAILED = "Failed"


class ReplicaStatus(enum.StrEnum):
    STARTING = "Starting"
    READY = "Ready"
    CRASHED = "Crashed"  # waiting for its restart (exponential backoff)
    STOPPED = "Stopped"


_NAME_OK = re.compile(r"[^a-z0-9-]+")


# C0 control characters but tab and line breaks: NUL is refused by PostgreSQL's text and JSON,
# the others garble a terminal.
_UNPRINTABLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def storable(text: str) -> str:
    """`text` a replica wrote (its log, its termination message), fit for the database and a
    terminal: what a tenant's model prints ends up in events and failure reasons."""
    return _UNPRINTABLE.sub("\ufffd", text)


def runtime_name(text: str) -> str:
    """A name usable in an OIP URL path (`/v2/models/{name}`): lower-case, digits, dashes."""
    cleaned = _NAME_OK.sub("-", text.lower()).strip("-")
    return cleaned[:63] or "model"


@dataclass(frozen=True)
class Quota:
    """A user's quota across all of their deployments: replicas, CPU and memory (the seed's
    5 replicas, 2 CPU, 4 GiB; each replica counted at `replica_cpu` and `replica_memory_mib`,
    which are also the local backend's per-replica cgroup limits)."""

    max_replicas: int
    max_cpu: float
    replica_cpu: float
    max_memory_mib: int = 4096
    replica_memory_mib: int = 768

    def headroom(self, in_use: int) -> int:
        """How many more replicas fit beside `in_use` (0 when none): the bound an autoscaler
        applies before asking for more."""
        by_cpu = int((self.max_cpu + 1e-9) // self.replica_cpu)
        by_memory = self.max_memory_mib // self.replica_memory_mib
        return max(0, min(self.max_replicas, by_cpu, by_memory) - in_use)

    def check(self, in_use: int, requested: int) -> None:
        """Raise `QuotaExceeded` when `in_use + requested` replicas break any limit."""
        total = in_use + requested
        cpu = round(total * self.replica_cpu, 3)
        memory = total * self.replica_memory_mib
        if requested <= self.headroom(in_use):
            return
        limit = (
            "replicas"
            if total > self.max_replicas
            else "CPU"
            if cpu > self.max_cpu + 1e-9
            else "memory"
        )
        raise QuotaExceeded(
            f"quota exceeded ({limit}): this needs {total} replicas "
            f"({cpu:g} CPU at {self.replica_cpu:g} CPU each, {memory} MiB at "
            f"{self.replica_memory_mib} MiB each) but your quota is "
            f"{self.max_replicas} replicas, {self.max_cpu:g} CPU and {self.max_memory_mib} MiB; "
            f"{in_use} replicas ({round(in_use * self.replica_cpu, 3):g} CPU, "
            f"{in_use * self.replica_memory_mib} MiB) are in use",
            details={
                "quota": {
                    "replicas": self.max_replicas,
                    "cpu": self.max_cpu,
                    "memory_mib": self.max_memory_mib,
                },
                "usage": {
                    "replicas": in_use,
                    "cpu": round(in_use * self.replica_cpu, 3),
                    "memory_mib": in_use * self.replica_memory_mib,
                },
                "requested": {
                    "replicas": requested,
                    "cpu": round(requested * self.replica_cpu, 3),
                    "memory_mib": requested * self.replica_memory_mib,
                },
                "replica_cpu": self.replica_cpu,
                "replica_memory_mib": self.replica_memory_mib,
            },
        )


class QuotaExceeded(Conflict):
    code = "quota_exceeded"


# -- what the deployer asks a runtime backend for, and what it observes ------------------------


@dataclass(frozen=True)
class RevisionTarget:
    """One revision of a deployment as a backend needs it: what to run, how many times."""

    revision: int
    version_id: UUID
    version_tag: str
    artifact_uri: str
    sha256: str | None
    filename: str | None
    replicas: int
    wheelhouse_uri: str | None = None


@dataclass(frozen=True)
class DeploymentSpec:
    """Desired state of one deployment. `fallback` (the last good revision) keeps running until
    every replica of `target` is ready, so a rollout never leaves the deployment without
    replicas."""

    deployment_id: UUID
    owner_id: UUID
    name: str
    target: RevisionTarget
    fallback: RevisionTarget | None = None
    # The user's autoscaling settings (None: `target.replicas` is a fixed count). The local
    # backend needs none (the deployer's autoscaler sets `replicas`); the kubernetes backend
    # renders the HPA from them.
    autoscaling: AutoscalingPolicy | None = None


@dataclass
class ReplicaView:
    """A backend's view of one replica (the local backend: one process)."""

    deployment_id: UUID
    revision: int
    index: int
    status: ReplicaStatus
    endpoint: str | None
    pid: int | None = None
    port: int | None = None
    restarts: int = 0
    launcher: str | None = None
    last_error: str | None = None
    ever_ready: bool = False
    # This start of the replica: an id unique to it (a local spawn, a pod's uid) and, once it
    # was ready, what the backend measured of it (ms; the cold-start estimator learns it once).
    start_id: str | None = None
    timings: dict[str, float] | None = None


@dataclass
class DeploymentObservation:
    """What a backend observed about one deployment after a reconcile step."""

    deployment_id: UUID
    replicas: list[ReplicaView] = field(default_factory=list)
    # Crashes before ever being ready, per revision (a deploy fails past a threshold).
    start_failures: dict[int, int] = field(default_factory=dict)
    # A failure retrying cannot fix (artifact missing, unusable URI), per revision.
    fatal: dict[int, str] = field(default_factory=dict)
    last_error: dict[int, str] = field(default_factory=dict)
    # Cold-start phase timings (ms) of the most recent replica that became ready, per revision.
    cold_start: dict[int, dict[str, float]] = field(default_factory=dict)
    events: list[tuple[str, str]] = field(default_factory=list)  # (kind, message)

    def ready(self, revision: int) -> list[ReplicaView]:
        return sorted(
            (
                r
                for r in self.replicas
                if r.revision == revision and r.status is ReplicaStatus.READY
            ),
            key=lambda r: r.index,
        )

    def endpoints(self, revision: int) -> list[str]:
        return [r.endpoint for r in self.ready(revision) if r.endpoint]
