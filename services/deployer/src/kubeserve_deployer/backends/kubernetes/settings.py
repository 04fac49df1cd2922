"""Settings of the kubernetes runtime backend: `DeployerSettings.k8s`, read from the environment
as `KUBESERVE_K8S_<FIELD>` (e.g. `KUBESERVE_K8S_RUNTIME_IMAGE`; `KUBESERVE_K8S` may also hold the
whole object as JSON). This model is the backend's configuration itself: tenancy, release values,
leader election and artifact access read it directly, so a new setting is one field here.

Plain data (a frozen pydantic model): importing it loads no cluster library.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

# charts/model-serving of this checkout; the deployer image has it at
# /opt/kubeserve/charts/model-serving (charts/kubeserve sets KUBESERVE_K8S_CHART_PATH).
_CHECKOUT_CHART = Path(__file__).resolve().parents[6] / "charts" / "model-serving"


class KubernetesSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    # -- the cluster ---------------------------------------------------------------------------
    kubeconfig: Path | None = Field(
        default=None,
        description="Kubeconfig file; empty: $KUBECONFIG, else the in-cluster service account.",
    )
    context: str | None = Field(default=None, description="Kubeconfig context.")
    request_timeout: float = Field(default=10.0, gt=0, description="Seconds per API call.")
    helm_executable: str = "helm"
    helm_timeout: float = Field(
        default=120.0, gt=0, description="Seconds per helm command (never --wait: the loop polls)."
    )
    chart_path: Path = Field(default=_CHECKOUT_CHART, description="charts/model-serving.")

    # -- tenants -------------------------------------------------------------------------------
    namespace_prefix: str = Field(
        default="user-", pattern=r"^[a-z0-9][a-z0-9-]*-$", description="Tenant namespaces."
    )
    quota_cpu: str = "2"
    quota_memory: str = "4Gi"
    quota_pods: int = Field(default=5, ge=1)
    tenant_access: Literal["perNamespace", "clusterWide"] = Field(
        default="perNamespace",
        description="perNamespace: provisioning binds tenant_cluster_role to the deployer's "
        "service account in each tenant namespace (charts/kubeserve's RBAC expects it).",
    )
    tenant_cluster_role: str = "kubeserve-deployer-tenant"
    service_account: str = "kubeserve-deployer"
    service_account_namespace: str = Field(
        default="kubeserve", description="The deployer's own namespace (its pods, its Lease)."
    )
    ingress_namespace: str = Field(
        default="ingress-nginx", description="Ingress controller's namespace (may reach pods)."
    )
    monitoring_namespace: str = Field(
        default="monitoring", description="Prometheus' namespace (may scrape tenant pods)."
    )
    gateway_namespace: str = Field(
        default="",
        description="Namespace of the platform gateway, which proxies predictions to the "
        "deployment's Service; its gateway pods may reach tenant pods. Empty: no allowance.",
    )
    dns_namespace: str = "kube-system"
    object_store_cidr: str = Field(
        default="", description="CIDR tenant pods may reach for the object store (S3)."
    )
    object_store_namespace: str = Field(
        default="", description="Namespace of an in-cluster object store (MinIO) pods may reach."
    )
    object_store_port: int = Field(default=9000, ge=1, le=65535)

    # -- releases of charts/model-serving ------------------------------------------------------
    runtime_image: str = Field(
        default="ghcr.io/kubeserve/runtime-base:0.1.0",
        description="Runtime image, [registry/]repository[:tag|@sha256:digest].",
    )
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    replica_cpu_request: str = "200m"
    replica_cpu_limit: str = Field(
        default="400m", description="Per replica; 5 replicas fit the tenant quota of 2 CPU."
    )
    replica_memory_request: str = "512Mi"
    replica_memory_limit: str = Field(
        default="768Mi", description="Per replica; 5 replicas fit the tenant quota of 4Gi."
    )
    ingress_enabled: bool = Field(default=False, description="An Ingress per deployment.")
    ingress_class_name: str = "nginx"
    ingress_hostname: str = Field(default="", description="Host of deployment Ingresses.")
    ingress_auth_url: str = Field(
        default="", description="Gateway endpoint nginx asks before each prediction (auth-url)."
    )
    ingress_tls_secret: str = Field(default="", description="TLS Secret (tenant namespace).")
    service_monitor: bool = Field(
        default=True,
        description="A ServiceMonitor per deployment (needs the Prometheus Operator CRDs).",
    )
    service_monitor_labels: dict[str, str] = Field(
        default_factory=lambda: {"release": "kube-prometheus-stack"},
        description="Labels of those ServiceMonitors, as a JSON object: what the Prometheus "
        "selects them by (kube-prometheus-stack: release=<its Helm release name>).",
    )
    autoscaling_enabled: bool = Field(
        default=True,
        description="An HPA per deployment that has autoscaling settings (min/max from them, "
        "bounded by the tenant's pod quota); off: every deployment runs its replica count.",
    )
    autoscaling_max_replicas: int = Field(
        default=5,
        ge=1,
        description="Platform cap of an HPA's maximum, further bounded by what the tenant's pod "
        "quota leaves.",
    )
    autoscaling_target_cpu: int = Field(
        default=70, ge=1, le=100, description="The HPAs' CPU target, percent of the request."
    )
    autoscaling_concurrency_metric: str = Field(
        default="",
        description="A Pods metric of requests in flight per pod served through "
        "prometheus-adapter (e.g. kubeserve_requests_in_flight): the HPAs then also aim at the "
        "deployment's target_concurrency. Empty: CPU only.",
    )

    # -- artifact access (presigned URLs: runtimes hold no object-store credentials) ------------
    s3_endpoint_url: str | None = Field(
        default=None,
        description="S3 endpoint as pods see it, which the presigned URLs point at (default: "
        "the deployer's own KUBESERVE_S3_ENDPOINT_URL).",
    )
    artifact_url_ttl_seconds: int = Field(
        default=24 * 3600,
        ge=600,
        le=7 * 24 * 3600,  # SigV4's limit for a presigned URL
        description="Validity of the URLs a runtime downloads its version with; the deployer "
        "signs them again when half of it is left.",
    )

    # -- the reconcile loop --------------------------------------------------------------------
    rollout_timeout_seconds: float = Field(
        default=300.0, gt=0, description="A revision not ready by then fails, with the reason."
    )
    poll_interval: float = Field(
        default=2.0, gt=0, description="Pass period while a rollout is in progress."
    )
    observe_interval: float = Field(
        default=10.0,
        gt=0,
        description="Re-read a fully ready, unchanged deployment this often (not every pass).",
    )
    release_scan_interval: float = Field(
        default=60.0, gt=0, description="Seconds between scans for missing/orphan releases."
    )

    # -- leader election (a Lease; the deployer may run several replicas) ----------------------
    leader_election: bool = Field(
        default=True,
        description="Only the holder of the Lease drives the cluster; others stand by.",
    )
    lease_name: str = "kubeserve-deployer"
    lease_namespace: str = Field(default="", description="Empty: service_account_namespace.")
    lease_duration_seconds: float = Field(
        default=15.0, ge=2, description="How long a Lease not renewed keeps others waiting."
    )
    renew_deadline_seconds: float = Field(
        default=10.0,
        ge=1,
        description="The leader stops acting when it could not renew for this long (less than "
        "the lease duration, so it stops before anyone else may start).",
    )
    retry_period_seconds: float = Field(default=2.0, gt=0, description="Between Lease attempts.")
    identity: str = Field(default="", description="Lease holder name; empty: hostname + random.")

    def resolved_lease_namespace(self) -> str:
        return self.lease_namespace or self.service_account_namespace

    @model_validator(mode="after")
    def _leader_stops_before_others_start(self) -> KubernetesSettings:
        if self.renew_deadline_seconds >= self.lease_duration_seconds:
            raise ValueError("renew_deadline_seconds must be less than lease_duration_seconds")
        if self.retry_period_seconds * 2 > self.renew_deadline_seconds:
            raise ValueError("retry_period_seconds must leave two attempts per renew deadline")
        return self
