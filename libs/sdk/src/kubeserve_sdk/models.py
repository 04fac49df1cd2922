"""Typed models of the public API, generated from the gateway's OpenAPI document by
scripts/generate_sdk_models.py (datamodel-code-generator): do not edit by hand.
Every model also reads like the JSON object it came from: `model["id"]`."""
from __future__ import annotations

# ruff: noqa
# mypy: disable-error-code="misc"

from uuid import UUID
from typing import Annotated, Any, Literal
from pydantic import AwareDatetime, ConfigDict, Field, RootModel
from kubeserve_sdk._base import ApiModel
from enum import StrEnum


class DeploymentIds(RootModel[list[UUID]]):
    root: Annotated[
        list[UUID],
        Field(
            description="Limit the key to these deployments; omit for all of yours.",
            max_length=100,
            min_length=1,
            title="Deployment Ids",
        ),
    ]


class ExpiresInDays(RootModel[int]):
    root: Annotated[int, Field(ge=1, le=3650, title="Expires In Days")]


class ApiKeyResolveRequest(ApiModel):
    api_key: Annotated[str, Field(max_length=1024, min_length=1, title="Api Key")]


class ArtifactRead(ApiModel):
    filename: Annotated[str, Field(title="Filename")]
    size: Annotated[int, Field(title="Size")]
    sha256: Annotated[str, Field(title="Sha256")]
    uri: Annotated[str, Field(title="Uri")]


class AutoscalingSettings(ApiModel):
    """
    Concurrency autoscaling (Knative's KPA model): replicas = ceil(requests in flight /
    target_concurrency), within min..max and the tenant quota.
    """

    model_config = ConfigDict(
        extra="forbid",
    )
    min_replicas: Annotated[
        int | None,
        Field(
            description="0 opts in to scale to zero.",
            ge=0,
            le=100,
            title="Min Replicas",
        ),
    ] = 1
    max_replicas: Annotated[int | None, Field(ge=1, le=100, title="Max Replicas")] = 3
    target_concurrency: Annotated[
        int | float | None,
        Field(
            description="Requests in flight one replica should carry.",
            title="Target Concurrency",
        ),
    ] = 2
    scale_to_zero_after_s: Annotated[
        int | float | None,
        Field(
            description="Idle seconds before 0 replicas (min_replicas 0).",
            title="Scale To Zero After S",
        ),
    ] = None


class BuildRead(ApiModel):
    version_id: Annotated[UUID, Field(title="Version Id")]
    model_id: Annotated[UUID, Field(title="Model Id")]
    version_tag: Annotated[str, Field(title="Version Tag")]
    status: Annotated[str, Field(title="Status")]
    attempts: Annotated[int, Field(title="Attempts")]
    stage: Annotated[str | None, Field(title="Stage")] = None
    reason: Annotated[str | None, Field(title="Reason")] = None
    report_uri: Annotated[str | None, Field(title="Report Uri")] = None
    report: Annotated[dict[str, Any] | None, Field(title="Report")] = None
    created_at: Annotated[AwareDatetime, Field(title="Created At")]
    started_at: Annotated[AwareDatetime | None, Field(title="Started At")] = None
    finished_at: Annotated[AwareDatetime | None, Field(title="Finished At")] = None


class Replicas(RootModel[int]):
    root: Annotated[
        int,
        Field(description="Number of replicas (>= 1).", ge=1, le=100, title="Replicas"),
    ]


class Name(RootModel[str]):
    root: Annotated[
        str,
        Field(
            description="Lower-case letters, digits and dashes; also the model name in OIP URLs.",
            max_length=63,
            min_length=1,
            pattern="^[a-z0-9]([a-z0-9-]*[a-z0-9])?$",
            title="Name",
        ),
    ]


class DeploymentCreate(ApiModel):
    model_config = ConfigDict(
        extra="forbid",
    )
    version_id: Annotated[UUID, Field(title="Version Id")]
    replicas: Annotated[
        Replicas | None,
        Field(
            description="A fixed replica count (default 1); or give `autoscaling`.",
            title="Replicas",
        ),
    ] = None
    autoscaling: AutoscalingSettings | None = None
    name: Annotated[Name | None, Field(title="Name")] = None


class DeploymentUpdate(ApiModel):
    model_config = ConfigDict(
        extra="forbid",
    )
    replicas: Annotated[
        Replicas | None,
        Field(description="A fixed count (turns autoscaling off).", title="Replicas"),
    ] = None
    autoscaling: Annotated[
        AutoscalingSettings | None,
        Field(description="Turn autoscaling on, or change its settings."),
    ] = None
    version_id: Annotated[
        UUID | None,
        Field(
            description="Move to another Ready version of the same model.",
            title="Version Id",
        ),
    ] = None


class Error(ApiModel):
    code: Annotated[str, Field(examples=["validation_error"])]
    message: str
    details: Annotated[
        dict[str, Any] | list[Any] | None,
        Field(
            description="More about the problem: for a 422 the list of `{field, message, type}`, for a quota 409 what is in use."
        ),
    ] = None


class ErrorEnvelope(ApiModel):
    """
    Every KubeServe error: a stable machine-readable code and a message.
    """

    error: Error


class EventRead(ApiModel):
    at: Annotated[AwareDatetime, Field(title="At")]
    kind: Annotated[str, Field(title="Kind")]
    message: Annotated[str, Field(title="Message")]


class Explanation(ApiModel):
    """
    One row's exact explanation by a linear model: the predicted class or value, the intercept and each (transformed) feature's term `coef * value`.
    """

    prediction: Any
    intercept: float
    contributions: dict[str, float]


class Framework(StrEnum):
    sklearn = "sklearn"
    xgboost = "xgboost"
    lightgbm = "lightgbm"
    onnx = "onnx"
    pytorch = "pytorch"
    custom = "custom"


class Output(ApiModel):
    name: str
    parameters: dict[str, Any] | None = None


class Datatype(StrEnum):
    BOOL = "BOOL"
    UINT8 = "UINT8"
    UINT16 = "UINT16"
    UINT32 = "UINT32"
    UINT64 = "UINT64"
    INT8 = "INT8"
    INT16 = "INT16"
    INT32 = "INT32"
    INT64 = "INT64"
    FP16 = "FP16"
    FP32 = "FP32"
    FP64 = "FP64"
    BYTES = "BYTES"


class InferTensor(ApiModel):
    """
    An Open Inference Protocol V2 tensor (row-major flat `data`).
    """

    name: str
    shape: list[int]
    datatype: Datatype
    parameters: dict[str, Any] | None = None
    data: list[Any] | None = None


class ModelCreate(ApiModel):
    model_config = ConfigDict(
        extra="forbid",
    )
    name: Annotated[
        str,
        Field(
            description="DNS-safe slug: lower-case letters, digits and '-', unique among your models.",
            max_length=63,
            min_length=1,
            pattern="^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$",
            title="Name",
        ),
    ]
    framework: Framework
    description: Annotated[str | None, Field(max_length=2000, title="Description")] = ""


class ModelReady(ApiModel):
    name: str
    ready: bool


class Name1(RootModel[str]):
    root: Annotated[
        str,
        Field(
            max_length=63,
            min_length=1,
            pattern="^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$",
            title="Name",
        ),
    ]


class Description(RootModel[str]):
    root: Annotated[str, Field(max_length=2000, title="Description")]


class ModelUpdate(ApiModel):
    model_config = ConfigDict(
        extra="forbid",
    )
    name: Annotated[Name1 | None, Field(title="Name")] = None
    description: Annotated[Description | None, Field(title="Description")] = None


class PredictRequest(ApiModel):
    """
    Rows of feature values (`instances`), or objects keyed by feature name (`records`).
    """

    instances: list[list[Any]] | None = None
    records: list[dict[str, Any]] | None = None


class PredictResponse(ApiModel):
    predictions: list[Any]
    probabilities: Annotated[
        list[list[float]] | None,
        Field(description="Per class, when the model has predict_proba."),
    ] = None


class PredictionError1(ApiModel):
    """
    Errors of the prediction routes: the gateway's envelope, or the model runtime's own shape `{"error": "message"}` (the Open Inference Protocol's).
    """

    error: str


class PredictionError(RootModel[ErrorEnvelope | PredictionError1]):
    root: Annotated[
        ErrorEnvelope | PredictionError1,
        Field(
            description='Errors of the prediction routes: the gateway\'s envelope, or the model runtime\'s own shape `{"error": "message"}` (the Open Inference Protocol\'s).',
            title="PredictionError",
        ),
    ]


class PredictionRead(ApiModel):
    """
    A predicted cold start on one backend, from the phases the deployer measured before
    (median of the recent starts per phase, scaled by the version's trial load time and
    wheelhouse size). `calibrated`: each phase the backend measures has at least 3
    observations; until then the figure leans on built-in priors.
    """

    backend: Annotated[
        str,
        Field(
            description="local-warm-pool, local-process or kubernetes-pod.",
            title="Backend",
        ),
    ]
    total_ms: Annotated[float, Field(title="Total Ms")]
    phases_ms: Annotated[dict[str, float], Field(title="Phases Ms")]
    calibrated: Annotated[bool, Field(title="Calibrated")]
    observations: Annotated[
        int,
        Field(
            description="The fewest observations behind any measured phase.",
            title="Observations",
        ),
    ]
    label: Annotated[
        str,
        Field(
            description='"calibrated" or "estimate, not yet calibrated".', title="Label"
        ),
    ]


class RateLimitSpec(ApiModel):
    """
    A key's own rate limit: a token bucket refilled at `requests_per_second` up to `burst`
    requests. The gateway also limits each deployment as a whole.
    """

    requests_per_second: Annotated[
        float, Field(gt=0.0, le=100000.0, title="Requests Per Second")
    ]
    burst: Annotated[
        int | None,
        Field(
            description="0: twice the rate, at least 1.",
            ge=0,
            le=1000000,
            title="Burst",
        ),
    ] = 0


class RefreshRequest(ApiModel):
    refresh_token: Annotated[
        str, Field(max_length=1024, min_length=1, title="Refresh Token")
    ]


class RegisterRequest(ApiModel):
    email: Annotated[
        str, Field(examples=["ada@example.com"], max_length=320, title="Email")
    ]
    password: Annotated[str, Field(max_length=4096, min_length=1, title="Password")]


class ReplicaColdStartRead(ApiModel):
    """
    One replica's measured cold start. `phases_ms` holds the phases its backend measures
    apart (start, dependencies, model_load, first_ready); `total_ms` is the whole start, from
    the start request to the first successful health check (a pod: created to Ready).
    """

    backend: Annotated[
        str,
        Field(
            description="local-warm-pool, local-process or kubernetes-pod.",
            title="Backend",
        ),
    ]
    phases_ms: Annotated[dict[str, float], Field(title="Phases Ms")]
    total_ms: Annotated[float, Field(title="Total Ms")]


class ReplicaCounts(ApiModel):
    desired: Annotated[int, Field(title="Desired")]
    ready: Annotated[int, Field(title="Ready")]


class ReplicaRead(ApiModel):
    revision: Annotated[int, Field(title="Revision")]
    index: Annotated[int, Field(title="Index")]
    status: Annotated[str, Field(title="Status")]
    restarts: Annotated[int, Field(title="Restarts")]
    last_error: Annotated[str | None, Field(title="Last Error")]
    started_at: Annotated[AwareDatetime | None, Field(title="Started At")]
    ready_at: Annotated[AwareDatetime | None, Field(title="Ready At")]
    backend: Annotated[
        str | None,
        Field(
            description="Where it runs: the local warm pool, a plain process, a pod.",
            title="Backend",
        ),
    ] = None
    cold_start: Annotated[
        ReplicaColdStartRead | None,
        Field(description="Its measured cold start, once it was ready."),
    ] = None


class RepositoryIndexRequest(ApiModel):
    """
    Triton's repository index request; `ready` is accepted and the one served model is always listed.
    """

    ready: bool | None = None


class RepositoryLoaded(RootModel[dict[str, Any]]):
    """
    Loading the served model again succeeds (it is loaded) with `{}`.
    """

    root: Annotated[dict[str, Any], Field(max_length=0)]


class RepositoryModelState(StrEnum):
    """
    `LOADING` until the model is loaded, then `READY`.
    """

    READY = "READY"
    LOADING = "LOADING"


class ResourcesRead(ApiModel):
    replicas: Annotated[int, Field(title="Replicas")]
    cpu: Annotated[float, Field(description="CPU-equivalents.", title="Cpu")]
    memory_mib: Annotated[int, Field(title="Memory Mib")]


class RevisionRead(ApiModel):
    revision: Annotated[int, Field(title="Revision")]
    version_id: Annotated[UUID, Field(title="Version Id")]
    version_tag: Annotated[str, Field(title="Version Tag")]
    replicas: Annotated[int, Field(title="Replicas")]
    reason: Annotated[str, Field(title="Reason")]
    created_at: Annotated[AwareDatetime, Field(title="Created At")]


class Revision(RootModel[int]):
    root: Annotated[
        int,
        Field(
            description="Revision to return to; default: the previous one.",
            ge=1,
            title="Revision",
        ),
    ]


class RollbackRequest(ApiModel):
    model_config = ConfigDict(
        extra="forbid",
    )
    revision: Annotated[
        Revision | None,
        Field(
            description="Revision to return to; default: the previous one.",
            title="Revision",
        ),
    ] = None


class ServerLive(ApiModel):
    """
    V2 server liveness.
    """

    live: bool


class ServerMetadata(ApiModel):
    name: str
    version: str
    extensions: list[str]


class ServerReady(ApiModel):
    """
    V2 server readiness (503 while the model loads).
    """

    ready: bool


class TensorMetadata(ApiModel):
    name: str
    datatype: str
    shape: list[int]


class TokenResponse(ApiModel):
    access_token: Annotated[str, Field(title="Access Token")]
    token_type: Annotated[Literal["bearer"], Field(title="Token Type")] = "bearer"
    expires_in: Annotated[
        int,
        Field(description="Seconds the access token stays valid.", title="Expires In"),
    ]
    refresh_token: Annotated[str, Field(title="Refresh Token")]
    refresh_expires_in: Annotated[
        int,
        Field(
            description="Seconds the refresh token stays valid.",
            title="Refresh Expires In",
        ),
    ]


class UserRead(ApiModel):
    id: Annotated[UUID, Field(title="Id")]
    email: Annotated[str, Field(title="Email")]
    role: Annotated[str, Field(title="Role")]
    disabled: Annotated[bool, Field(title="Disabled")]
    created_at: Annotated[AwareDatetime, Field(title="Created At")]
    updated_at: Annotated[AwareDatetime, Field(title="Updated At")]


class V1ModelList(ApiModel):
    """
    KServe V1 `GET /v1/models`: the names of the models served (one).
    """

    models: list[str]


class V1ServerLive(ApiModel):
    """
    KServe V1 server liveness (`GET /` of the runtime).
    """

    status: Literal["alive"]


class VersionStatus(StrEnum):
    """
    `Uploading` is never stored today: the row is written only after the bytes are stored,
    directly as `Building`. It stays in the vocabulary for clients and a future resumable upload.
    """

    Uploading = "Uploading"
    Building = "Building"
    Ready = "Ready"
    Failed = "Failed"


class VersionSummary(ApiModel):
    id: Annotated[UUID, Field(title="Id")]
    version_tag: Annotated[str, Field(title="Version Tag")]
    status: VersionStatus
    created_at: Annotated[AwareDatetime, Field(title="Created At")]


class ApiKeyCreate(ApiModel):
    name: Annotated[str, Field(max_length=100, min_length=1, title="Name")]
    deployment_ids: Annotated[
        DeploymentIds | None,
        Field(
            description="Limit the key to these deployments; omit for all of yours.",
            title="Deployment Ids",
        ),
    ] = None
    expires_at: Annotated[
        AwareDatetime | None,
        Field(description="Absolute expiry (UTC).", title="Expires At"),
    ] = None
    expires_in_days: Annotated[ExpiresInDays | None, Field(title="Expires In Days")] = (
        None
    )
    rate_limit: Annotated[
        RateLimitSpec | None,
        Field(
            description="This key's own rate limit; omit for the platform's default per key (1000 requests/s, burst 2000 unless the operator changed it)."
        ),
    ] = None


class ApiKeyCreated(ApiModel):
    id: Annotated[UUID, Field(title="Id")]
    name: Annotated[str, Field(title="Name")]
    prefix: Annotated[
        str,
        Field(
            description="The first characters of the key, to recognise it.",
            title="Prefix",
        ),
    ]
    deployment_ids: Annotated[list[str] | None, Field(title="Deployment Ids")]
    expires_at: Annotated[AwareDatetime | None, Field(title="Expires At")]
    created_at: Annotated[AwareDatetime, Field(title="Created At")]
    last_used_at: Annotated[AwareDatetime | None, Field(title="Last Used At")]
    revoked_at: Annotated[AwareDatetime | None, Field(title="Revoked At")]
    rate_limit: Annotated[
        RateLimitSpec | None,
        Field(description="The key's own rate limit; null: the platform default."),
    ] = None
    key: Annotated[
        str, Field(description="The secret. Shown once: store it now.", title="Key")
    ]


class ApiKeyRead(ApiModel):
    id: Annotated[UUID, Field(title="Id")]
    name: Annotated[str, Field(title="Name")]
    prefix: Annotated[
        str,
        Field(
            description="The first characters of the key, to recognise it.",
            title="Prefix",
        ),
    ]
    deployment_ids: Annotated[list[str] | None, Field(title="Deployment Ids")]
    expires_at: Annotated[AwareDatetime | None, Field(title="Expires At")]
    created_at: Annotated[AwareDatetime, Field(title="Created At")]
    last_used_at: Annotated[AwareDatetime | None, Field(title="Last Used At")]
    revoked_at: Annotated[AwareDatetime | None, Field(title="Revoked At")]
    rate_limit: Annotated[
        RateLimitSpec | None,
        Field(description="The key's own rate limit; null: the platform default."),
    ] = None


class ApiKeyResolved(ApiModel):
    user_id: Annotated[UUID, Field(title="User Id")]
    role: Annotated[str, Field(title="Role")]
    api_key_id: Annotated[UUID, Field(title="Api Key Id")]
    deployment_ids: Annotated[list[str] | None, Field(title="Deployment Ids")]
    rate_limit: RateLimitSpec | None = None


class ColdStartRead(ApiModel):
    """
    `GET /cold-start?version_id=`: a version's predicted cold start on every backend.
    """

    version_id: Annotated[UUID, Field(title="Version Id")]
    predicted_cold_start_ms: Annotated[
        dict[str, float],
        Field(description="Backend -> total (ms).", title="Predicted Cold Start Ms"),
    ]
    predictions: Annotated[list[PredictionRead], Field(title="Predictions")]


class DeploymentRead(ApiModel):
    id: Annotated[UUID, Field(title="Id")]
    name: Annotated[str, Field(title="Name")]
    owner_id: Annotated[UUID, Field(title="Owner Id")]
    model_id: Annotated[UUID, Field(title="Model Id")]
    version_id: Annotated[UUID, Field(title="Version Id")]
    version_tag: Annotated[str | None, Field(title="Version Tag")]
    status: Annotated[str, Field(title="Status")]
    revision: Annotated[int, Field(title="Revision")]
    serving_revision: Annotated[int | None, Field(title="Serving Revision")]
    replicas: ReplicaCounts
    autoscaling: Annotated[
        AutoscalingSettings | None, Field(description="Null: a fixed replica count.")
    ] = None
    url: Annotated[str, Field(title="Url")]
    failure_reason: Annotated[str | None, Field(title="Failure Reason")]
    cold_start: Annotated[
        dict[str, float] | None,
        Field(
            description="Phase timings (ms) of the last rollout's cold start.",
            title="Cold Start",
        ),
    ] = None
    predicted_cold_start: Annotated[
        PredictionRead | None,
        Field(description="The next replica's predicted cold start on its backend."),
    ] = None
    created_at: Annotated[AwareDatetime, Field(title="Created At")]
    updated_at: Annotated[AwareDatetime, Field(title="Updated At")]
    events: Annotated[list[EventRead] | None, Field(title="Events")] = None
    revisions: Annotated[list[RevisionRead] | None, Field(title="Revisions")] = None
    replica_details: Annotated[
        list[ReplicaRead] | None,
        Field(
            description="Replicas as the runtime backend last saw them.",
            title="Replica Details",
        ),
    ] = None


class DeploymentUsageRead(ApiModel):
    id: Annotated[UUID, Field(title="Id")]
    name: Annotated[str, Field(title="Name")]
    status: Annotated[str, Field(title="Status")]
    replicas: Annotated[
        dict[str, int],
        Field(
            description="`desired` (reserved) and `ready` (running).", title="Replicas"
        ),
    ]
    reserved: Annotated[
        ResourcesRead,
        Field(description="What its desired replicas count against quota."),
    ]
    running: ResourcesRead
    autoscaling_max_replicas: Annotated[
        int | None, Field(title="Autoscaling Max Replicas")
    ]
    can_add_replicas: Annotated[
        int,
        Field(
            description="Replicas it could still be scaled up by within the quota (and its autoscaling maximum), the others staying as they are.",
            title="Can Add Replicas",
        ),
    ]


class ExplainResponse(ApiModel):
    explanations: list[Explanation]


class InferRequest(ApiModel):
    id: str | None = None
    parameters: dict[str, Any] | None = None
    inputs: list[InferTensor]
    outputs: list[Output] | None = None


class InferResponse(ApiModel):
    model_name: str
    model_version: str | None = None
    id: str | None = None
    parameters: dict[str, Any] | None = None
    outputs: list[InferTensor]


class ModelMetadata(ApiModel):
    name: str
    versions: list[str] | None = None
    platform: str
    inputs: list[TensorMetadata]
    outputs: list[TensorMetadata]


class ModelRead(ApiModel):
    id: Annotated[UUID, Field(title="Id")]
    name: Annotated[str, Field(title="Name")]
    framework: Framework
    description: Annotated[str, Field(title="Description")]
    created_at: Annotated[AwareDatetime, Field(title="Created At")]
    updated_at: Annotated[AwareDatetime, Field(title="Updated At")]
    latest_version: VersionSummary | None = None


class NeedRead(ApiModel):
    needs: ResourcesRead
    fits: Annotated[bool, Field(title="Fits")]
    message: Annotated[str, Field(title="Message")]


class PageDeploymentRead(ApiModel):
    items: Annotated[list[DeploymentRead], Field(title="Items")]
    total: Annotated[int, Field(title="Total")]
    limit: Annotated[int, Field(title="Limit")]
    offset: Annotated[int, Field(title="Offset")]


class PageModelRead(ApiModel):
    items: Annotated[list[ModelRead], Field(title="Items")]
    total: Annotated[int, Field(title="Total")]
    limit: Annotated[int, Field(title="Limit")]
    offset: Annotated[int, Field(title="Offset")]


class RepositoryModel(ApiModel):
    """
    The served model in the repository index.
    """

    name: str
    version: str
    state: RepositoryModelState


class UsageRead(ApiModel):
    quota: ResourcesRead
    in_use: Annotated[
        ResourcesRead,
        Field(
            description="Reserved by your active deployments (their desired replicas): what the quota check counts."
        ),
    ]
    running: Annotated[ResourcesRead, Field(description="Replicas ready right now.")]
    available: ResourcesRead
    more_replicas_fit: Annotated[
        int,
        Field(
            description="Replicas that still fit, all deployments together.",
            title="More Replicas Fit",
        ),
    ]
    new_deployment: Annotated[
        NeedRead, Field(description="What a new one-replica deployment needs.")
    ]
    scale_up: Annotated[
        NeedRead, Field(description="What one more replica of any deployment needs.")
    ]
    deployments: Annotated[list[DeploymentUsageRead], Field(title="Deployments")]


class UserPageRead(ApiModel):
    items: Annotated[list[UserRead], Field(title="Items")]
    total: Annotated[int, Field(title="Total")]
    limit: Annotated[int, Field(title="Limit")]
    offset: Annotated[int, Field(title="Offset")]


class VersionRead(ApiModel):
    id: Annotated[UUID, Field(title="Id")]
    model_id: Annotated[UUID, Field(title="Model Id")]
    version_tag: Annotated[str, Field(title="Version Tag")]
    number: Annotated[int, Field(title="Number")]
    status: VersionStatus
    artifact: ArtifactRead
    requirements: Annotated[str, Field(title="Requirements")]
    failure_stage: Annotated[str | None, Field(title="Failure Stage")] = None
    failure_reason: Annotated[str | None, Field(title="Failure Reason")] = None
    signature: Annotated[dict[str, Any] | None, Field(title="Signature")] = None
    dependency_plan: Annotated[
        dict[str, Any] | None, Field(title="Dependency Plan")
    ] = None
    predicted_cold_start_ms: Annotated[
        float | None, Field(title="Predicted Cold Start Ms")
    ] = None
    created_at: Annotated[AwareDatetime, Field(title="Created At")]
    updated_at: Annotated[AwareDatetime, Field(title="Updated At")]
    built_at: Annotated[AwareDatetime | None, Field(title="Built At")] = None


class PageVersionRead(ApiModel):
    items: Annotated[list[VersionRead], Field(title="Items")]
    total: Annotated[int, Field(title="Total")]
    limit: Annotated[int, Field(title="Limit")]
    offset: Annotated[int, Field(title="Offset")]


class RepositoryIndex(RootModel[list[RepositoryModel]]):
    """
    Triton's model repository index: the one model this deployment serves.
    """

    root: Annotated[
        list[RepositoryModel],
        Field(
            description="Triton's model repository index: the one model this deployment serves.",
            title="RepositoryIndex",
        ),
    ]
