"""Settings of the deployer service (environment variables `KUBESERVE_*`).

The artifact-store fields come from `ArtifactStoreSettings` (the same ones the registry and
builder read), so the embedded mode shares one artifact directory. Defaults suit the embedded
mode: the `local` runtime backend keeps its cache, replica state and logs under
`{home}/runtime`. The kubernetes backend's settings are one nested model, `k8s`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Literal

from kubeserve_common.storage.settings import ArtifactStoreSettings
from pydantic import Field
from pydantic_settings import SettingsConfigDict

from kubeserve_deployer.backends.kubernetes.settings import KubernetesSettings


class DeployerSettings(ArtifactStoreSettings):
    # `KUBESERVE_K8S_RUNTIME_IMAGE` -> k8s.runtime_image: split once after the prefix, so the
    # nested model keeps the flat variable names (field names with underscores stay whole).
    model_config = SettingsConfigDict(env_nested_delimiter="_", env_nested_max_split=1)

    port: int = 8084
    runtime_backend: Literal["local", "kubernetes"] = Field(
        default="local",
        description="Where replicas run: `local` processes, or Helm releases of "
        "charts/model-serving in per-tenant namespaces (`kubernetes`).",
    )
    runtime_dir: Path | None = Field(
        default=None, description="Local backend state: artifact cache, replica files, logs."
    )
    # -- quota (per user, across all of the user's deployments) ---------------------------------
    quota_max_replicas: int = Field(default=5, ge=1, description="Replicas a user may run.")
    quota_cpu: float = Field(default=2.0, gt=0, description="CPU-equivalents a user may use.")
    replica_cpu: float = Field(default=0.4, gt=0, description="CPU-equivalents of one replica.")
    quota_memory_mib: int = Field(
        default=4096, ge=64, description="Memory (MiB) a user's replicas may use together."
    )
    replica_memory_mib: int = Field(
        default=768, ge=64, description="Memory limit (MiB) of one replica (local: its cgroup)."
    )
    page_size_max: int = Field(default=100, ge=1, le=1000)
    recent_events: int = Field(default=20, ge=1, le=200)
    # -- local backend -------------------------------------------------------------------------
    insecure_no_sandbox: bool = Field(
        default=False,
        description="KUBESERVE_INSECURE_NO_SANDBOX=1: run local replicas unconfined, as the "
        "platform's user, on TCP ports (single-user laptops only; `kubeserve up "
        "--insecure-no-sandbox`). Default: every replica is sandboxed, and a machine that "
        "cannot sandbox refuses to deploy.",
    )
    use_warm_pool: bool = Field(
        default=True, description="Fork replicas from a pre-imported pool (else plain processes)."
    )
    runtime_python: str = Field(
        default=sys.executable, description="Interpreter of the pool and runtime processes."
    )
    pool_start_timeout: float = Field(default=60.0, gt=0)
    pool_request_timeout: float = Field(default=10.0, gt=0)
    replica_start_timeout: float = Field(
        default=60.0, gt=0, description="Seconds a replica may take to answer ready."
    )
    health_interval: float = Field(default=2.0, gt=0, description="Seconds between checks.")
    health_timeout: float = Field(default=1.0, gt=0)
    unhealthy_threshold: int = Field(
        default=3, ge=1, description="Failed checks in a row before a live replica is restarted."
    )
    restart_backoff_base: float = Field(default=0.5, gt=0)
    restart_backoff_max: float = Field(default=30.0, gt=0)
    max_start_failures: int = Field(
        default=3, ge=1, description="Crashes before first ready that fail a deploy."
    )
    stop_grace: float = Field(default=5.0, gt=0, description="SIGTERM to SIGKILL, seconds.")
    reconcile_interval: float = Field(
        default=2.0, gt=0, description="Idle pass period; passes run at once on events."
    )
    starting_poll_interval: float = Field(
        default=0.01, gt=0, description="Pass period while a replica is starting."
    )
    fetch_timeout: float = Field(default=300.0, gt=0, description="Artifact fetch, seconds.")
    stop_replicas_on_exit: bool = Field(
        default=False,
        description="Stop every replica when the deployer stops (default: they keep serving "
        "and the next deployer re-adopts them).",
    )

    # -- autoscaler (issue 12; drives the local backend, Kubernetes uses the HPA) -------------
    autoscale_interval: float = Field(
        default=1.0, gt=0, description="Seconds between autoscaler decisions."
    )
    autoscale_stable_window: float = Field(
        default=60.0, gt=0, description="Seconds of load averaged for a steady decision."
    )
    autoscale_panic_window: float = Field(
        default=6.0, gt=0, description="Seconds averaged to react to a burst (panic mode)."
    )
    autoscale_scale_down_delay: float = Field(
        default=60.0, ge=0, description="A scale-down waits this long for load to stay low."
    )
    autoscale_scale_to_zero_after: float = Field(
        default=300.0,
        gt=0,
        description="Idle seconds before 0 replicas when a deployment sets min_replicas 0 "
        "without scale_to_zero_after_s.",
    )

    # -- deleted users (issue 15.7) -------------------------------------------------------------
    tenant_retire_grace_seconds: float = Field(
        default=3600.0,
        ge=0,
        description="Seconds after `UserDeleted` before the tenant's namespace is removed (its "
        "deployments stop at once).",
    )
    tenant_retire_check_seconds: float = Field(
        default=60.0,
        gt=0,
        description="Seconds between checks of a pending retirement (the retry delay of the "
        "`tenant-retire` queue: RabbitMQ keeps it per queue, so a change needs the queue "
        "`q.deployer.tenant-retire.retry` deleted first).",
    )

    # -- kubernetes backend: KUBESERVE_K8S_<FIELD> (see backends/kubernetes/settings.py) -------
    k8s: KubernetesSettings = Field(default_factory=KubernetesSettings)

    def resolved_runtime_dir(self) -> Path:
        return (self.runtime_dir or self.home / "runtime").resolve()
