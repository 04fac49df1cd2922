"""Event envelope (CloudEvents 1.0), the event catalog and the broker topology names."""

from kubeserve_common.events.catalog import (
    ApiKeyRevoked,
    DeploymentDeleted,
    DeploymentFailed,
    DeploymentReady,
    DeploymentScaled,
    DeployRequested,
    EventPayload,
    ModelCreated,
    UndeployRequested,
    UserDeleted,
    UserDisabled,
    UserRegistered,
    VersionBuildFailed,
    VersionBuilt,
    VersionUploaded,
    payload_class,
)
from kubeserve_common.events.envelope import CLOUDEVENTS_CONTENT_TYPE, CloudEvent

__all__ = [
    "CLOUDEVENTS_CONTENT_TYPE",
    "ApiKeyRevoked",
    "CloudEvent",
    "DeployRequested",
    "DeploymentDeleted",
    "DeploymentFailed",
    "DeploymentReady",
    "DeploymentScaled",
    "EventPayload",
    "ModelCreated",
    "UndeployRequested",
    "UserDeleted",
    "UserDisabled",
    "UserRegistered",
    "VersionBuildFailed",
    "VersionBuilt",
    "VersionUploaded",
    "payload_class",
]
