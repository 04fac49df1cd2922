"""Composition root of the deployer service: the one place that builds its engine, bus, artifact
store, runtime backend and use cases. The HTTP app, the worker and the tests all get their
container from `bootstrap()`; tests and the embedded runner may pass a bus (and a store).

The reconcile loop (which drives the runtime backend) runs wherever the consumers run: in
`serve` (unless `--no-consume`) and in `worker`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kubeserve_common.events.envelope import CloudEvent
from kubeserve_common.messaging.bus import EventBus, Handler
from kubeserve_common.messaging.inbox import idempotent
from kubeserve_common.service import ServiceContainer, build_container
from kubeserve_common.storage import ArtifactStore, create_artifact_store

from kubeserve_deployer.adapters.logs import LogSource
from kubeserve_deployer.adapters.runtime_backend import RuntimeBackend
from kubeserve_deployer.backends.kubernetes.backend import KubernetesBackend
from kubeserve_deployer.backends.kubernetes.factory import create_kubernetes_backend
from kubeserve_deployer.backends.kubernetes.logs import KubernetesLogSource
from kubeserve_deployer.backends.local.artifact_cache import ArtifactCache
from kubeserve_deployer.backends.local.backend import LocalBackend
from kubeserve_deployer.backends.local.logs import LocalLogSource
from kubeserve_deployer.backends.local.sandboxing import ReplicaLimits
from kubeserve_deployer.consumers.handlers import (
    DEPLOYMENTS,
    RETIREMENTS,
    USERS,
    VERSIONS,
    deployments_handler,
    retirements_handler,
    users_handler,
    versions_handler,
)
from kubeserve_deployer.domain.deployments import Quota
from kubeserve_deployer.services.autoscaler import AutoscalerService, LoadBoard
from kubeserve_deployer.services.cold_start import ColdStartConfig, ColdStartService
from kubeserve_deployer.services.deployments import DeploymentService
from kubeserve_deployer.services.intents import IntentService
from kubeserve_deployer.services.logs import LogService
from kubeserve_deployer.services.projection import VersionProjectionService
from kubeserve_deployer.services.reconciler import ReconcilerConfig, ReconcileService
from kubeserve_deployer.services.tenants import RETIRE_MAX_ATTEMPTS, TenantService
from kubeserve_deployer.services.usage import UsageService
from kubeserve_deployer.settings import DeployerSettings

SERVICE = "deployer"
MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


@dataclass(kw_only=True)
class DeployerContainer(ServiceContainer):
    settings: DeployerSettings
    store: ArtifactStore
    backend: RuntimeBackend
    deployments: DeploymentService
    reconciler: ReconcileService
    tenants: TenantService
    load: LoadBoard
    autoscaler: AutoscalerService | None  # None on Kubernetes: the HPA scales
    logs: LogService
    usage: UsageService
    cold_starts: ColdStartService

    async def start(self, *, consume: bool = True, relay: bool = True) -> None:
        await super().start(consume=consume, relay=relay)
        if consume:
            await self.reconciler.start()
            if self.autoscaler is not None:
                await self.autoscaler.start()


def _pod_view_store(settings: DeployerSettings, base: ServiceContainer) -> ArtifactStore | None:
    """The store as runtime pods reach it, when that is another endpoint than the deployer's
    (presigned URLs are signed for one host)."""
    endpoint = settings.k8s.s3_endpoint_url
    if not endpoint or endpoint == settings.s3_endpoint_url:
        return None
    signer = create_artifact_store(settings.model_copy(update={"s3_endpoint_url": endpoint}))
    base.on_stop.append(signer.close)
    return signer


def create_backend(settings: DeployerSettings, store: ArtifactStore) -> RuntimeBackend:
    runtime_dir = settings.resolved_runtime_dir()
    cache = ArtifactCache(store, runtime_dir / "cache", timeout=settings.local.fetch_timeout)
    # A replica's size is the quota's (REPLICA_CPU, REPLICA_MEMORY_MIB): its cgroup limits here.
    memory = settings.replica_memory_mib * 1024 * 1024
    limits = ReplicaLimits(memory_bytes=memory, cpu=settings.replica_cpu)
    return LocalBackend(settings.local, cache, runtime_dir=runtime_dir, limits=limits)


def create_log_source(settings: DeployerSettings, backend: RuntimeBackend) -> LogSource:
    """Where replica logs are read: pod logs for the kubernetes backend, else the local
    backend's files (the API process reads them from the same runtime directory)."""
    if isinstance(backend, KubernetesBackend):
        return KubernetesLogSource(backend.kube, backend.config.namespace_prefix)
    log_dir = backend.log_dir if isinstance(backend, LocalBackend) else None
    return LocalLogSource(log_dir or settings.resolved_runtime_dir() / "logs")


def bootstrap(
    settings: DeployerSettings | None = None,
    *,
    bus: EventBus | None = None,
    store: ArtifactStore | None = None,
    backend: RuntimeBackend | None = None,
) -> DeployerContainer:
    settings = settings or DeployerSettings()
    base = build_container(SERVICE, settings, MIGRATIONS, bus=bus)
    the_store = store or create_artifact_store(settings)
    if backend is None and settings.runtime_backend == "kubernetes":
        backend = create_kubernetes_backend(
            settings.k8s, the_store, signer=_pod_view_store(settings, base)
        )
    backend = backend or create_backend(settings, the_store)
    # Only the kubernetes backend has tenants to provision (DESIGN.md section 2).
    kubernetes = backend if isinstance(backend, KubernetesBackend) else None
    reconciler = ReconcileService(
        base.uow,
        backend,
        ReconcilerConfig(
            idle_interval=settings.reconcile_interval,
            max_start_failures=settings.max_start_failures,
            recent_events=settings.recent_events,
        ),
    )
    quota = Quota(
        settings.quota_max_replicas,
        settings.quota_cpu,
        settings.replica_cpu,
        settings.quota_memory_mib,
        settings.replica_memory_mib,
    )
    load = LoadBoard()
    autoscaler = None
    if kubernetes is None:  # on Kubernetes the HPA scales (rendered from the same settings)
        autoscaler = AutoscalerService(
            base.uow, quota, load, settings.autoscale, on_change=reconciler.wake
        )

    def changed() -> None:
        """Deployments changed (this process's API, or an event the worker consumed)."""
        reconciler.wake()
        if autoscaler is not None:
            autoscaler.wake()

    cold_starts = ColdStartService(
        base.uow,
        ColdStartConfig(
            runtime_backend="kubernetes" if kubernetes is not None else "local",
            warm_pool=settings.local.use_warm_pool,
        ),
    )
    deployments = DeploymentService(
        base.uow,
        quota,
        public_url=settings.gateway_url,
        cold_starts=cold_starts,
        recent_events=settings.recent_events,
        on_change=changed,
    )
    container = DeployerContainer(
        **base.parts(),  # the common parts, settings included
        store=the_store,
        backend=backend,
        deployments=deployments,
        reconciler=reconciler,
        tenants=TenantService(kubernetes, kubernetes, retire=settings.tenant_retire),
        load=load,
        autoscaler=autoscaler,
        logs=LogService(deployments, create_log_source(settings, backend)),
        usage=UsageService(base.uow, deployments.quota),
        cold_starts=cold_starts,
    )

    def then_wake(handler: Handler) -> Handler:
        async def handle(event: CloudEvent) -> None:
            await handler(event)
            changed()  # after the commit: the loops see the new state

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
            idempotent(SERVICE, "deployments", container.uow, deployments_handler(IntentService()))
        ),
    )
    # Every backend stops a deleted user's deployments; only the kubernetes one has a
    # tenant space to provision and, after the grace period, to retire.
    container.subscribe(
        "users",
        USERS,
        then_wake(idempotent(SERVICE, "users", container.uow, users_handler(container.tenants))),
    )
    if kubernetes is not None:
        container.subscribe(
            "tenant-retire",
            RETIREMENTS,
            idempotent(
                SERVICE, "tenant-retire", container.uow, retirements_handler(container.tenants)
            ),
            retry_delay=settings.tenant_retire.check_seconds,
            max_attempts=RETIRE_MAX_ATTEMPTS,
        )
    container.extra_checks["artifact_store"] = the_store.check
    if store is None:  # a store passed in belongs to the caller
        container.on_stop.append(the_store.close)
    # Hooks run in reverse: the loop (which fetches from the store) stops before the store.
    container.on_stop.append(container.reconciler.stop)
    if container.autoscaler is not None:
        container.on_stop.append(container.autoscaler.stop)  # runs first: decisions end
    return container
