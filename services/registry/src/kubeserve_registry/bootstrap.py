"""Composition root of the registry service: the one place that builds its engine, bus, artifact
store and use cases. The HTTP app, the worker and the tests all get their container from
`bootstrap()`; tests and the embedded runner may pass a bus (and a store) of their own."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kubeserve_common.messaging.bus import EventBus
from kubeserve_common.messaging.inbox import idempotent
from kubeserve_common.service import ServiceContainer, build_container
from kubeserve_common.storage import ArtifactStore, create_artifact_store

from kubeserve_registry.consumers.handlers import (
    BUILD_RESULTS,
    DEPLOYMENTS,
    build_results_handler,
    deployments_handler,
)
from kubeserve_registry.services.deployments import DeploymentProjection
from kubeserve_registry.services.models import ModelService
from kubeserve_registry.services.versions import UploadLimits, VersionService
from kubeserve_registry.settings import RegistrySettings

SERVICE = "registry"
MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


@dataclass(kw_only=True)
class RegistryContainer(ServiceContainer):
    settings: RegistrySettings
    store: ArtifactStore
    models: ModelService
    versions: VersionService


def bootstrap(
    settings: RegistrySettings | None = None,
    *,
    bus: EventBus | None = None,
    store: ArtifactStore | None = None,
) -> RegistryContainer:
    settings = settings or RegistrySettings()
    base = build_container(SERVICE, settings, MIGRATIONS, bus=bus)
    the_store = store or create_artifact_store(settings)
    limits = UploadLimits(settings.max_artifact_bytes, settings.max_requirements_bytes)
    container = RegistryContainer(
        **base.parts(),  # the common parts, settings included
        store=the_store,
        models=ModelService(base.uow, the_store),
        versions=VersionService(base.uow, the_store, limits),
    )

    container.subscribe(
        "build-results",
        BUILD_RESULTS,
        idempotent(
            SERVICE, "build-results", container.uow, build_results_handler(container.versions)
        ),
    )
    container.subscribe(
        "deployments",
        DEPLOYMENTS,
        idempotent(
            SERVICE, "deployments", container.uow, deployments_handler(DeploymentProjection())
        ),
    )
    container.extra_checks["artifact_store"] = the_store.check
    if store is None:  # a store passed in belongs to the caller
        container.on_stop.append(the_store.close)
    return container
