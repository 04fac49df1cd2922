"""The registry's consumers: build results from the builder and the deployer's deployments.

Each runs inside `idempotent()`: the inbox claim and the effect share one transaction, and the
services add state checks (a result for a version no longer Building is ignored)."""

from __future__ import annotations

from kubeserve_common.db.uow import UnitOfWork
from kubeserve_common.errors import PermanentError
from kubeserve_common.events.catalog import (
    DeploymentDeleted,
    DeployRequested,
    VersionBuildFailed,
    VersionBuilt,
)
from kubeserve_common.events.envelope import CloudEvent

from kubeserve_registry.services.deployments import DeploymentProjection
from kubeserve_registry.services.versions import VersionService

BUILD_RESULTS = (VersionBuilt.event_type(), VersionBuildFailed.event_type())
DEPLOYMENTS = (DeployRequested.event_type(), DeploymentDeleted.event_type())


def build_results_handler(versions: VersionService):  # type: ignore[no-untyped-def]
    async def effect(event: CloudEvent, uow: UnitOfWork) -> None:
        payload = event.payload()  # a payload that does not validate is dead-lettered
        if isinstance(payload, VersionBuilt):
            await versions.apply_built(uow, payload)
        elif isinstance(payload, VersionBuildFailed):
            await versions.apply_build_failed(uow, payload)
        else:
            raise PermanentError(f"unexpected event type {event.type}")

    return effect


def deployments_handler(projection: DeploymentProjection):  # type: ignore[no-untyped-def]
    async def effect(event: CloudEvent, uow: UnitOfWork) -> None:
        payload = event.payload()
        if isinstance(payload, DeployRequested):
            await projection.deploy_requested(uow, payload)
        elif isinstance(payload, DeploymentDeleted):
            await projection.deployment_deleted(uow, payload)
        else:
            raise PermanentError(f"unexpected event type {event.type}")

    return effect
