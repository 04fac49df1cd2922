"""The deployer's consumers: the version projection (registry and builder events), the
worker's deployment intents, the tenants (provisioning on the kubernetes backend; a deleted
user's deployments stopped everywhere) and, on the kubernetes backend, the retirement of a
deleted user's namespace after the grace period. Each runs inside `idempotent()` (inbox claim +
effect in one transaction); the services add state checks."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from kubeserve_common.db.uow import UnitOfWork
from kubeserve_common.events.catalog import (
    DeploymentScaled,
    DeployRequested,
    ModelCreated,
    UndeployRequested,
    UserDeleted,
    UserRegistered,
    VersionBuildFailed,
    VersionBuilt,
    VersionUploaded,
)
from kubeserve_common.events.envelope import CloudEvent
from kubeserve_common.messaging.inbox import EffectHandler, dispatch

from kubeserve_deployer.services.intents import IntentService
from kubeserve_deployer.services.projection import VersionProjectionService
from kubeserve_deployer.services.tenants import TenantService

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

USERS = (UserRegistered.event_type(), UserDeleted.event_type())
RETIREMENTS = (UserDeleted.event_type(),)


def versions_handler(projection: VersionProjectionService) -> EffectHandler:
    return dispatch(
        {
            ModelCreated: projection.model_created,
            VersionUploaded: projection.version_uploaded,
            VersionBuilt: projection.version_built,
            VersionBuildFailed: projection.version_build_failed,
        }
    )


def deployments_handler(worker: IntentService) -> EffectHandler:
    return dispatch(
        {
            DeployRequested: worker.deploy_requested,
            DeploymentScaled: worker.scaled,
            UndeployRequested: worker.undeploy_requested,
        }
    )


def users_handler(tenants: TenantService) -> EffectHandler:
    return dispatch({UserRegistered: tenants.user_registered, UserDeleted: tenants.user_deleted})


def retirements_handler(tenants: TenantService) -> EffectHandler:
    return tenants.retire_when_due
