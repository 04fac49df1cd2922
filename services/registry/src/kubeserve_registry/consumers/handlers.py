"""The registry's consumers: build results from the builder and the deployer's deployments.

Each runs inside `idempotent()`: the inbox claim and the effect share one transaction, and the
services add state checks (a result for a version no longer Building is ignored)."""

from __future__ import annotations

from kubeserve_common.events.catalog import (
    DeploymentDeleted,
    DeployRequested,
    VersionBuildFailed,
    VersionBuilt,
)
from kubeserve_common.messaging.inbox import EffectHandler, dispatch

from kubeserve_registry.services.deployments import DeploymentProjection
from kubeserve_registry.services.versions import VersionService

BUILD_RESULTS = (VersionBuilt.event_type(), VersionBuildFailed.event_type())
DEPLOYMENTS = (DeployRequested.event_type(), DeploymentDeleted.event_type())


def build_results_handler(versions: VersionService) -> EffectHandler:
    return dispatch(
        {VersionBuilt: versions.apply_built, VersionBuildFailed: versions.apply_build_failed}
    )


def deployments_handler(projection: DeploymentProjection) -> EffectHandler:
    return dispatch(
        {
            DeployRequested: projection.deploy_requested,
            DeploymentDeleted: projection.deployment_deleted,
        }
    )
