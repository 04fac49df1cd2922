"""The event catalog: one typed payload per event type (DESIGN.md section 3).

A payload class names its CloudEvents type in `__event_type__`. Adding a field to a published
payload means a new `.v2` class published beside the `.v1` one until every consumer moved.
An event about one model version or one deployment derives from `_VersionEvent` or
`_DeploymentEvent`, which declare the ids every such event carries (first, in that order).
"""

from __future__ import annotations

from typing import Any, ClassVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field


class EventPayload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    __event_type__: ClassVar[str]

    @classmethod
    def event_type(cls) -> str:
        return cls.__event_type__


_CATALOG: dict[str, type[EventPayload]] = {}


def _register(cls: type[EventPayload]) -> type[EventPayload]:
    if cls.__event_type__ in _CATALOG:
        raise RuntimeError(f"duplicate event type {cls.__event_type__}")
    _CATALOG[cls.__event_type__] = cls
    return cls


def payload_class(event_type: str) -> type[EventPayload]:
    """The payload model for a type; KeyError for a type the catalog does not know."""
    try:
        return _CATALOG[event_type]
    except KeyError:
        raise KeyError(f"unknown event type {event_type!r}") from None


def catalog() -> dict[str, type[EventPayload]]:
    return dict(_CATALOG)


class _VersionEvent(EventPayload):
    """What every event about one model version carries (registry and builder)."""

    model_id: UUID
    version_id: UUID
    version_tag: str
    owner_id: UUID


class _DeploymentEvent(EventPayload):
    """What every event about one deployment carries (deployer)."""

    deployment_id: UUID
    owner_id: UUID


@_register
class UserRegistered(EventPayload):
    __event_type__ = "io.kubeserve.user.registered.v1"
    user_id: UUID
    email: str
    role: str


@_register
class UserDisabled(EventPayload):
    """An administrator disabled the account: its refresh tokens are revoked and its API keys
    stop resolving; gateways refuse its access tokens issued up to the event's `time`."""

    __event_type__ = "io.kubeserve.user.disabled.v1"
    user_id: UUID


@_register
class UserDeleted(EventPayload):
    """An administrator deleted the account (with its API keys and refresh tokens): gateways
    refuse its access tokens, the deployer stops its deployments and, after a grace period,
    removes what the runtime backend keeps for the tenant (its Kubernetes namespace)."""

    __event_type__ = "io.kubeserve.user.deleted.v1"
    user_id: UUID


@_register
class ApiKeyRevoked(EventPayload):
    """A user revoked one of their API keys: gateways drop it from their caches at once."""

    __event_type__ = "io.kubeserve.api_key.revoked.v1"
    api_key_id: UUID
    user_id: UUID


@_register
class ModelCreated(EventPayload):
    __event_type__ = "io.kubeserve.model.created.v1"
    model_id: UUID
    owner_id: UUID
    name: str
    framework: str


@_register
class VersionUploaded(_VersionEvent):
    __event_type__ = "io.kubeserve.version.uploaded.v1"
    framework: str
    artifact_uri: str
    filename: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=0)
    requirements: str = ""


@_register
class VersionBuilt(_VersionEvent):
    __event_type__ = "io.kubeserve.version.built.v1"
    signature: dict[str, Any]
    dependency_plan: dict[str, Any]
    predicted_cold_start_ms: float = Field(ge=0)
    wheelhouse_uri: str | None = None
    report_uri: str | None = None


@_register
class VersionBuildFailed(_VersionEvent):
    __event_type__ = "io.kubeserve.version.build_failed.v1"
    stage: str
    reason: str
    report_uri: str | None = None


@_register
class DeployRequested(_DeploymentEvent):
    __event_type__ = "io.kubeserve.deployment.requested.v1"
    model_id: UUID
    version_id: UUID
    revision: int = Field(ge=1)
    replicas: int = Field(ge=1)
    artifact_uri: str
    wheelhouse_uri: str | None = None


@_register
class DeploymentReady(_DeploymentEvent):
    __event_type__ = "io.kubeserve.deployment.ready.v1"
    revision: int = Field(ge=1)
    url: str
    endpoints: list[str]
    ready_replicas: int = Field(ge=0)
    cold_start: dict[str, float] = Field(default_factory=dict)


@_register
class DeploymentFailed(_DeploymentEvent):
    __event_type__ = "io.kubeserve.deployment.failed.v1"
    revision: int = Field(ge=1)
    reason: str


@_register
class DeploymentScaled(_DeploymentEvent):
    __event_type__ = "io.kubeserve.deployment.scaled.v1"
    replicas: int = Field(ge=1)


@_register
class DeploymentAutoscaled(_DeploymentEvent):
    """The deployer's concurrency autoscaler changed a deployment's replica count (issue 12);
    `replicas` may be 0 (scaled to zero)."""

    __event_type__ = "io.kubeserve.deployment.autoscaled.v1"
    previous_replicas: int = Field(ge=0)
    replicas: int = Field(ge=0)
    in_flight: float = Field(ge=0, description="Requests in flight the decision was based on.")
    target_concurrency: float = Field(gt=0)
    panic: bool = False
    reason: str


@_register
class UndeployRequested(_DeploymentEvent):
    __event_type__ = "io.kubeserve.deployment.undeploy_requested.v1"


@_register
class DeploymentDeleted(_DeploymentEvent):
    __event_type__ = "io.kubeserve.deployment.deleted.v1"
