"""Composition root of the deployer service: the one place that builds its engine, bus, artifact
store, runtime backend and use cases. The HTTP app, the worker and the tests all get their
container from `bootstrap()`; tests and the embedded runner may pass a bus (and a store).

The reconcile loop (which drives the runtime backend) runs wherever the consumers run: in
`serve` (unless `--no-consume`) and in `worker`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

from kubeserve_common.events.envelope import CloudEvent
from kubeserve_common.messaging.bus import EventBus, Handler
from kubeserve_common.messaging.inbox import idempotent
from kubeserve_common.service import ServiceContainer, build_container
from kubeserve_common.storage import ArtifactStore, create_artifact_store
from pydantic import SecretStr

from kubeserve_deployer.adapters.artifact_cache import ArtifactCache
from kubeserve_deployer.adapters.helm import HelmPort, Pyhelm3Helm
from kubeserve_deployer.adapters.kubernetes import KubernetesAsyncioCluster, KubernetesPort
from kubeserve_deployer.adapters.kubernetes_backend import (
    KubernetesBackend,
    KubernetesBackendConfig,
)
from kubeserve_deployer.adapters.local import LocalBackend, LocalBackendConfig
from kubeserve_deployer.adapters.runtime_backend import RuntimeBackend
from kubeserve_deployer.adapters.tenants import KubernetesTenantProvisioner, TenantProvisioner
from kubeserve_deployer.consumers.handlers import (
    DEPLOYMENTS,
    USERS,
    VERSIONS,
    deployments_handler,
    users_handler,
    versions_handler,
)
from kubeserve_deployer.domain.model import Quota
from kubeserve_deployer.domain.release import ServingConfig
from kubeserve_deployer.domain.tenancy import TenancyConfig
from kubeserve_deployer.services.deployments import DeploymentService
from kubeserve_deployer.services.projection import VersionProjectionService
from kubeserve_deployer.services.reconciler import ReconcilerConfig, ReconcileService
from kubeserve_deployer.services.tenants import TenantService
from kubeserve_deployer.services.worker import WorkerService
from kubeserve_deployer.settings import DeployerSettings

SERVICE = "deployer"
MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


@dataclass
class DeployerContainer(ServiceContainer):
    settings: DeployerSettings
    store: ArtifactStore = None  # type: ignore[assignment]
    backend: RuntimeBackend = None  # type: ignore[assignment]
    deployments: DeploymentService = None  # type: ignore[assignment]
    reconciler: ReconcileService = None  # type: ignore[assignment]
    tenants: TenantService = None  # type: ignore[assignment]

    async def start(self, *, consume: bool = True, relay: bool = True) -> None:
        await super().start(consume=consume, relay=relay)
        if consume:
            await self.reconciler.start()


def _secret(value: SecretStr | None) -> str:
    return value.get_secret_value() if value is not None else ""


def tenancy_config(settings: DeployerSettings) -> TenancyConfig:
    return TenancyConfig(
        namespace_prefix=settings.k8s_namespace_prefix,
        quota_cpu=settings.k8s_quota_cpu,
        quota_memory=settings.k8s_quota_memory,
        quota_pods=settings.k8s_quota_pods,
        default_cpu_limit=settings.k8s_replica_cpu_limit,
        default_memory_limit=settings.k8s_replica_memory_limit,
        ingress_namespace=settings.k8s_ingress_namespace,
        monitoring_namespace=settings.k8s_monitoring_namespace,
        gateway_namespace=settings.k8s_gateway_namespace,
        dns_namespace=settings.k8s_dns_namespace,
        object_store_cidr=settings.k8s_object_store_cidr,
        object_store_namespace=settings.k8s_object_store_namespace,
        object_store_port=settings.k8s_object_store_port,
        bind_deployer=settings.k8s_tenant_access == "perNamespace",
        tenant_cluster_role=settings.k8s_tenant_cluster_role,
        deployer_service_account=settings.k8s_service_account,
        deployer_namespace=settings.k8s_service_account_namespace,
        s3_secret_name=settings.k8s_s3_secret_name,
        s3_access_key_id=_secret(settings.k8s_tenant_s3_access_key_id),
        s3_secret_access_key=_secret(settings.k8s_tenant_s3_secret_access_key),
    )


def serving_config(settings: DeployerSettings) -> ServingConfig:
    has_s3_secret = bool(
        settings.k8s_tenant_s3_access_key_id and settings.k8s_tenant_s3_secret_access_key
    )
    return ServingConfig(
        image=settings.k8s_runtime_image,
        image_pull_policy=settings.k8s_image_pull_policy,
        s3_endpoint=settings.k8s_s3_endpoint_url or settings.s3_endpoint_url or "",
        s3_region=settings.s3_region,
        s3_secret_name=settings.k8s_s3_secret_name if has_s3_secret else "",
        cpu_request=settings.k8s_replica_cpu_request,
        cpu_limit=settings.k8s_replica_cpu_limit,
        memory_request=settings.k8s_replica_memory_request,
        memory_limit=settings.k8s_replica_memory_limit,
        ingress_enabled=settings.k8s_ingress_enabled,
        ingress_class_name=settings.k8s_ingress_class_name,
        ingress_hostname=settings.k8s_ingress_hostname,
        ingress_auth_url=settings.k8s_ingress_auth_url,
        ingress_tls_secret=settings.k8s_ingress_tls_secret,
        service_monitor=settings.k8s_service_monitor,
        autoscaling_enabled=settings.k8s_autoscaling_enabled,
        autoscaling_max_replicas=settings.k8s_autoscaling_max_replicas,
        quota_pods=settings.k8s_quota_pods,
    )


def create_kubernetes_backend(
    settings: DeployerSettings,
    *,
    helm: HelmPort | None = None,
    kube: KubernetesPort | None = None,
) -> tuple[KubernetesBackend, TenantProvisioner]:
    """The kubernetes backend and its tenant provisioner; tests pass fakes of both ports."""
    kube = kube or KubernetesAsyncioCluster(
        kubeconfig=settings.k8s_kubeconfig,
        context=settings.k8s_context,
        timeout=settings.k8s_request_timeout,
    )
    helm = helm or Pyhelm3Helm(
        settings.k8s_chart_path,
        executable=settings.k8s_helm_executable,
        timeout=settings.k8s_helm_timeout,
        kubeconfig=settings.k8s_kubeconfig,
        kubecontext=settings.k8s_context,
    )
    tenants = KubernetesTenantProvisioner(kube, tenancy_config(settings))
    backend = KubernetesBackend(
        helm,
        kube,
        tenants,
        KubernetesBackendConfig(
            serving=serving_config(settings),
            namespace_prefix=settings.k8s_namespace_prefix,
            rollout_timeout=settings.k8s_rollout_timeout_seconds,
            poll_interval=settings.k8s_poll_interval,
            scan_interval=settings.k8s_release_scan_interval,
            observe_interval=settings.k8s_observe_interval,
        ),
    )
    return backend, tenants


def create_backend(settings: DeployerSettings, store: ArtifactStore) -> RuntimeBackend:
    runtime_dir = settings.resolved_runtime_dir()
    cache = ArtifactCache(store, runtime_dir / "cache", timeout=settings.fetch_timeout)
    config = LocalBackendConfig(
        runtime_dir=runtime_dir,
        python=settings.runtime_python,
        use_pool=settings.use_warm_pool,
        pool_start_timeout=settings.pool_start_timeout,
        pool_request_timeout=settings.pool_request_timeout,
        start_timeout=settings.replica_start_timeout,
        health_interval=settings.health_interval,
        health_timeout=settings.health_timeout,
        unhealthy_threshold=settings.unhealthy_threshold,
        backoff_base=settings.restart_backoff_base,
        backoff_max=settings.restart_backoff_max,
        stop_grace=settings.stop_grace,
        starting_poll=settings.starting_poll_interval,
        fetch_timeout=settings.fetch_timeout,
        stop_on_close=settings.stop_replicas_on_exit,
    )
    return LocalBackend(config, cache)


def bootstrap(
    settings: DeployerSettings | None = None,
    *,
    bus: EventBus | None = None,
    store: ArtifactStore | None = None,
    backend: RuntimeBackend | None = None,
) -> DeployerContainer:
    settings = settings or DeployerSettings()
    base = build_container(SERVICE, settings, MIGRATIONS, bus=bus)
    container = DeployerContainer(
        **{f.name: getattr(base, f.name) for f in fields(ServiceContainer)},
    )
    the_store = store or create_artifact_store(settings)
    container.store = the_store
    provisioner: TenantProvisioner | None = None
    if backend is None and settings.runtime_backend == "kubernetes":
        backend, provisioner = create_kubernetes_backend(settings)
    elif isinstance(backend, KubernetesBackend):
        provisioner = backend.tenants
    container.backend = backend or create_backend(settings, the_store)
    container.tenants = TenantService(provisioner)
    container.reconciler = ReconcileService(
        container.uow,
        container.backend,
        ReconcilerConfig(
            idle_interval=settings.reconcile_interval,
            max_start_failures=settings.max_start_failures,
            recent_events=settings.recent_events,
        ),
    )
    container.deployments = DeploymentService(
        container.uow,
        Quota(settings.quota_max_replicas, settings.quota_cpu, settings.replica_cpu),
        public_url=settings.gateway_url,
        recent_events=settings.recent_events,
        on_change=container.reconciler.wake,
    )

    def then_wake(handler: Handler) -> Handler:
        async def handle(event: CloudEvent) -> None:
            await handler(event)
            container.reconciler.wake()  # after the commit: the loop sees the new state

        return handle

    container.subscribe(
        "versions",
        VERSIONS,
        idempotent(
            SERVICE, "versions", container.uow, versions_handler(VersionProjectionService())
        ),
    )
    container.subscribe(
        "deployments",
        DEPLOYMENTS,
        then_wake(
            idempotent(SERVICE, "deployments", container.uow, deployments_handler(WorkerService()))
        ),
    )
    if provisioner is not None:
        # Only the kubernetes backend has tenants to provision (DESIGN.md section 2).
        container.subscribe(
            "users",
            USERS,
            idempotent(SERVICE, "users", container.uow, users_handler(container.tenants)),
        )
    container.extra_checks["artifact_store"] = the_store.check
    if store is None:  # a store passed in belongs to the caller
        container.on_stop.append(the_store.close)
    # Hooks run in reverse: the loop (which fetches from the store) stops before the store.
    container.on_stop.append(container.reconciler.stop)
    return container
