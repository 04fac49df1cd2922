"""The deployer's consumers: the version projection (registry and builder events), the
worker's deployment intents and, on the kubernetes backend, tenant provisioning. Each runs
inside `idempotent()` (inbox claim + effect in one transaction); the services add state
checks."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from kubeserve_common.db.uow import UnitOfWork
from kubeserve_common.errors import PermanentError
from kubeserve_common.events.catalog import (
    DeploymentScaled,
    DeployRequested,
    ModelCreated,
    UndeployRequested,
    UserRegistered,
    VersionBuildFailed,
    VersionBuilt,
    VersionUploaded,
)
from kubeserve_common.events.envelope import CloudEvent

from kubeserve_deployer.services.projection import VersionProjectionService
from kubeserve_deployer.services.tenants import TenantService
from kubeserve_deployer.services.worker import WorkerService

Effect = Callable[[CloudEvent, UnitOfWork], Awaitable[None]]

VERSIONS = (
    ModelCreated.event_type(),
    VersionUploaded.event_type(),
    VersionBuilt.event_type(),
    VersionBuildFailed.event_type(),
)
DEPLOYMENTS = (
    DeployRequested.event_type(),
    DeploymentScaled.event_type(),
    UndeployRequested.event_type(),
)

USERS = (UserRegistered.event_type(),)


def versions_handler(projection: VersionProjectionService) -> Effect:
    async def effect(event: CloudEvent, uow: UnitOfWork) -> None:
        payload = event.payload()  # a payload that does not validate is dead-lettered
        if isinstance(payload, ModelCreated):
            await projection.model_created(uow, payload)
        elif isinstance(payload, VersionUploaded):
            await projection.version_uploaded(uow, payload)
        elif isinstance(payload, VersionBuilt):
            await projection.version_built(uow, payload)
        elif isinstance(payload, VersionBuildFailed):
            await projection.version_build_failed(uow, payload)
        else:
            raise PermanentError(f"unexpected event type {event.type}")

    return effect


def deployments_handler(worker: WorkerService) -> Effect:
    async def effect(event: CloudEvent, uow: UnitOfWork) -> None:
        payload = event.payload()
        if isinstance(payload, DeployRequested):
            await worker.deploy_requested(uow, payload)
        elif isinstance(payload, DeploymentScaled):
            await worker.scaled(uow, payload)
        elif isinstance(payload, UndeployRequested):
            await worker.undeploy_requested(uow, payload)
        else:
            raise PermanentError(f"unexpected event type {event.type}")

    return effect


def users_handler(tenants: TenantService) -> Effect:
    async def effect(event: CloudEvent, uow: UnitOfWork) -> None:
        payload = event.payload()
        if not isinstance(payload, UserRegistered):
            raise PermanentError(f"unexpected event type {event.type}")
        await tenants.user_registered(uow, payload)

    return effect
