"""Settings of the deployer service (environment variables `KUBESERVE_*`).

The artifact-store fields come from `ArtifactStoreSettings` (the same ones the registry and
builder read), so the embedded mode shares one artifact directory. Defaults suit the embedded
mode: the `local` runtime backend keeps its cache, replica state and logs under
`{home}/runtime`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Literal

from kubeserve_common.storage.settings import ArtifactStoreSettings
from pydantic import Field, SecretStr


class DeployerSettings(ArtifactStoreSettings):
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
    page_size_max: int = Field(default=100, ge=1, le=1000)
    recent_events: int = Field(default=20, ge=1, le=200)
    # -- local backend -------------------------------------------------------------------------
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

    # -- kubernetes backend (names match charts/kubeserve's deployer env, KUBESERVE_K8S_*) ----
    k8s_kubeconfig: Path | None = Field(
        default=None,
        description="Kubeconfig file; empty: in-cluster config (service-account token), else "
        "$KUBECONFIG.",
    )
    k8s_context: str | None = Field(default=None, description="Kubeconfig context.")
    k8s_namespace_prefix: str = Field(
        default="user-", pattern=r"^[a-z0-9][a-z0-9-]*-$", description="Tenant namespaces."
    )
    k8s_chart_path: Path = Field(
        default=Path(__file__).resolve().parents[4] / "charts" / "model-serving",
        description="charts/model-serving (the deployer image has it at "
        "/opt/kubeserve/charts/model-serving).",
    )
    k8s_runtime_image: str = Field(
        default="ghcr.io/kubeserve/runtime-base:0.1.0",
        description="Runtime image, [registry/]repository[:tag|@sha256:digest].",
    )
    k8s_image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    k8s_ingress_enabled: bool = Field(default=False, description="An Ingress per deployment.")
    k8s_ingress_class_name: str = "nginx"
    k8s_ingress_hostname: str = Field(default="", description="Host of deployment Ingresses.")
    k8s_ingress_auth_url: str = Field(
        default="", description="Gateway endpoint nginx asks before each prediction (auth-url)."
    )
    k8s_ingress_tls_secret: str = Field(default="", description="TLS Secret (tenant namespace).")
    k8s_ingress_namespace: str = Field(
        default="ingress-nginx", description="Ingress controller's namespace (may reach pods)."
    )
    k8s_monitoring_namespace: str = Field(
        default="monitoring", description="Prometheus' namespace (may scrape tenant pods)."
    )
    k8s_gateway_namespace: str = Field(
        default="",
        description="Namespace of the platform gateway, which proxies predictions to the "
        "in-cluster Service URL; its gateway pods may reach tenant pods. Empty: no allowance.",
    )
    k8s_object_store_cidr: str = Field(
        default="", description="CIDR tenant pods may reach for the object store (S3)."
    )
    k8s_object_store_namespace: str = Field(
        default="", description="Namespace of an in-cluster object store (MinIO) pods may reach."
    )
    k8s_object_store_port: int = Field(default=9000, ge=1, le=65535)
    k8s_dns_namespace: str = "kube-system"
    k8s_service_monitor: bool = Field(default=False, description="A ServiceMonitor per deployment.")
    k8s_autoscaling_enabled: bool = Field(
        default=False,
        description="An HPA per deployment (minReplicas = the deployment's replicas); off: "
        "the replica count is exactly what the user asked for.",
    )
    k8s_autoscaling_max_replicas: int = Field(default=3, ge=1)
    k8s_rollout_timeout_seconds: float = Field(
        default=300.0, gt=0, description="A revision not ready by then fails, with the reason."
    )
    k8s_poll_interval: float = Field(
        default=2.0, gt=0, description="Pass period while a rollout is in progress."
    )
    k8s_observe_interval: float = Field(
        default=10.0,
        gt=0,
        description="Re-read a fully ready, unchanged deployment this often (not every pass).",
    )
    k8s_release_scan_interval: float = Field(
        default=60.0, gt=0, description="Seconds between scans for missing/orphan releases."
    )
    k8s_request_timeout: float = Field(default=10.0, gt=0, description="Kubernetes API calls.")
    k8s_helm_timeout: float = Field(
        default=120.0, gt=0, description="One helm command (never --wait: the loop polls)."
    )
    k8s_helm_executable: str = "helm"
    k8s_replica_cpu_request: str = "200m"
    k8s_replica_cpu_limit: str = Field(
        default="400m", description="Per replica; 5 replicas fit the tenant quota of 2 CPU."
    )
    k8s_replica_memory_request: str = "512Mi"
    k8s_replica_memory_limit: str = Field(
        default="768Mi", description="Per replica; 5 replicas fit the tenant quota of 4Gi."
    )
    k8s_quota_cpu: str = "2"
    k8s_quota_memory: str = "4Gi"
    k8s_quota_pods: int = Field(default=5, ge=1)
    k8s_s3_secret_name: str = Field(
        default="kubeserve-s3-read",
        description="Secret provisioning writes into each tenant namespace from "
        "k8s_tenant_s3_access_key_id/secret (read-only credentials) and the runtime reads.",
    )
    k8s_tenant_s3_access_key_id: SecretStr | None = Field(
        default=None, description="Read-only S3 credentials for runtimes (never the platform's)."
    )
    k8s_tenant_s3_secret_access_key: SecretStr | None = None
    k8s_s3_endpoint_url: str | None = Field(
        default=None, description="S3 endpoint as pods see it (default: s3_endpoint_url)."
    )
    k8s_tenant_access: Literal["perNamespace", "clusterWide"] = Field(
        default="perNamespace",
        description="perNamespace: provisioning binds k8s_tenant_cluster_role to the deployer's "
        "service account in each tenant namespace (charts/kubeserve's RBAC expects it).",
    )
    k8s_tenant_cluster_role: str = "kubeserve-deployer-tenant"
    k8s_service_account: str = "kubeserve-deployer"
    k8s_service_account_namespace: str = "kubeserve"

    def resolved_runtime_dir(self) -> Path:
        return (self.runtime_dir or self.home / "runtime").resolve()
