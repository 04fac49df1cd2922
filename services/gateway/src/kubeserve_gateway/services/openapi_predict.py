"""What the public OpenAPI document says beyond the services' own documents: the prediction
routes (served by each deployment's runtime, so no service describes them) with the simple
JSON, KServe V1 and Open Inference Protocol V2 schemas, and the error envelope every route
answers with, by status."""

from __future__ import annotations

from typing import Any

from kubeserve_gateway.services.openapi_schemas import ERROR, PREDICTION_ERROR

_REF = "#/components/schemas/"
ERROR_RESPONSES = "#/components/responses/"

ERROR_DESCRIPTIONS = {
    "400": "Bad request (e.g. an unsafe path, or a prediction input the model refuses)",
    "401": "Missing or invalid credentials",
    "403": "Not allowed (e.g. an API key limited to other deployments, or not an admin)",
    "404": "Not found - also another tenant's object",
    "409": "Conflict with the current state (e.g. a version not Ready, a quota reached)",
    "413": "Body too large",
    "422": "Invalid request: the message names the field and the problem",
    "429": "Rate limited: retry after `Retry-After` seconds",
    "500": "The model failed on this input",
    "501": "Not implemented for this model (e.g. `:explain` of a model that is not linear)",
    "502": "The deployment's replica answered with an invalid response",
    "503": "A dependency is unavailable (`database_unavailable`, `broker_unavailable`, "
    "`upstream_unavailable`, no ready replica): retry after `Retry-After` seconds",
}

_DEPLOYMENT = {
    "name": "deployment_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "format": "uuid"},
}
_MODEL = {
    "name": "model_name",
    "in": "path",
    "required": True,
    "description": "The deployment's model name (see the deployment's `name`).",
    "schema": {"type": "string"},
}
_VERSION = {
    "name": "model_version",
    "in": "path",
    "required": True,
    "description": "A version tag (`v1`) or its number (`1`).",
    "schema": {"type": "string"},
}
_PREDICT_ERRORS = ("400", "401", "403", "404", "413", "429", "500", "502", "503")
_READ_ERRORS = ("401", "403", "404", "429", "503")


def _json(schema: str) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": _REF + schema}}}


def _op(
    operation_id: str,
    summary: str,
    answer: str | None,
    *,
    body: str | None = None,
    body_required: bool = True,
    params: tuple[dict[str, Any], ...] = (),
    errors: tuple[str, ...] = _PREDICT_ERRORS,
) -> dict[str, Any]:
    op: dict[str, Any] = {
        "tags": ["predictions"],
        "operationId": operation_id,
        "summary": summary,
        "parameters": [_DEPLOYMENT, *params],
        "responses": {"200": {"description": "OK", "content": _json(answer)}} if answer else {},
    }
    if body is not None:
        op["requestBody"] = {"required": body_required, "content": _json(body)}
    for status in errors:
        op["responses"][status] = {"$ref": f"{ERROR_RESPONSES}prediction_{status}"}
    return op


def prediction_paths() -> dict[str, dict[str, Any]]:
    """Every runtime route the gateway forwards (`test_openapi_predict.py` checks the list
    against the runtime's routers), under `/api/v1/predict/{deployment_id}`."""
    base = "/api/v1/predict/{deployment_id}"
    v1m = f"{base}/v1/models/{{model_name}}"
    v2m = f"{base}/v2/models/{{model_name}}"
    repo = f"{base}/v2/repository"
    read = _READ_ERRORS
    return {
        base: {
            "get": _op("server_live_v1", "KServe V1 server live", "V1ServerLive", errors=read),
            "post": _op("predict", "Predict (simple JSON): rows or records in, predictions out",
                        "PredictResponse", body="PredictRequest"),
        },
        f"{base}/v1/models": {
            "get": _op("list_models_v1", "KServe V1 list models (the one served)",
                       "V1ModelList", errors=read)
        },
        v1m: {
            "get": _op("model_ready_v1", "KServe V1 model ready (503 while it loads)",
                       "ModelReady", params=(_MODEL,), errors=read)
        },
        f"{v1m}:predict": {
            "post": _op("predict_v1", "KServe V1 predict", "PredictResponse",
                        body="PredictRequest", params=(_MODEL,))
        },
        f"{v1m}:explain": {
            "post": _op("explain_v1", "KServe V1 explain: exact per-feature contributions of "
                        "linear models (501 for other models)", "ExplainResponse",
                        body="PredictRequest", params=(_MODEL,),
                        errors=(*_PREDICT_ERRORS, "501"))
        },
        f"{base}/v2": {
            "get": _op("server_metadata_v2", "V2 server metadata", "ServerMetadata", errors=read)
        },
        f"{base}/v2/health/live": {
            "get": _op("server_live_v2", "V2 server live", "ServerLive", errors=read)
        },
        f"{base}/v2/health/ready": {
            "get": _op("server_ready_v2", "V2 server ready (503 while the model loads)",
                       "ServerReady", errors=read)
        },
        v2m: {
            "get": _op("model_metadata_v2", "V2 model metadata (native tensor names, datatypes)",
                       "ModelMetadata", params=(_MODEL,), errors=read)
        },
        f"{v2m}/ready": {
            "get": _op("model_ready_v2", "V2 model ready", "ModelReady", params=(_MODEL,),
                       errors=read)
        },
        f"{v2m}/infer": {
            "post": _op("infer_v2", "V2 inference (Open Inference Protocol)", "InferResponse",
                        body="InferRequest", params=(_MODEL,))
        },
        f"{v2m}/versions/{{model_version}}": {
            "get": _op("model_version_metadata_v2", "V2 model version metadata",
                       "ModelMetadata", params=(_MODEL, _VERSION), errors=read)
        },
        f"{v2m}/versions/{{model_version}}/ready": {
            "get": _op("model_version_ready_v2", "V2 model version ready", "ModelReady",
                       params=(_MODEL, _VERSION), errors=read)
        },
        f"{v2m}/versions/{{model_version}}/infer": {
            "post": _op("infer_version_v2", "V2 inference on a model version", "InferResponse",
                        body="InferRequest", params=(_MODEL, _VERSION))
        },
        f"{repo}/index": {
            "post": _op("repository_index_v2", "Triton repository index: the served model",
                        "RepositoryIndex", body="RepositoryIndexRequest", body_required=False,
                        errors=("401", "403", "404", "429", "503"))
        },
        f"{repo}/models/{{model_name}}/load": {
            "post": _op("repository_load_v2", "Triton repository load: a no-op success for "
                        "the served model", "RepositoryLoaded", params=(_MODEL,), errors=read)
        },
        f"{repo}/models/{{model_name}}/unload": {
            "post": _unload(),
        },
    }  # fmt: skip


def _unload() -> dict[str, Any]:
    # Always refused: the repository is read-only (scaling the deployment stops the model).
    op = _op("repository_unload_v2", "Triton repository unload: refused, the repository is "
             "read-only (scale the deployment to 0 instead)", None, params=(_MODEL,),
             errors=("401", "404", "429", "503"))  # fmt: skip
    op["responses"]["403"] = {
        "description": "Always: this server's model repository is read-only (also an API "
        "key limited to other deployments)",
        "content": {"application/json": {"schema": PREDICTION_ERROR}},
    }
    return op


def _header(description: str, kind: str = "integer") -> dict[str, Any]:
    return {"description": description, "schema": {"type": kind}}


_RETRY_AFTER = _header("Seconds to wait before retrying.")
# The IETF draft's headers, sent on every rate-limited answer (429 included).
_RATE_LIMIT = {
    "RateLimit-Limit": _header("Requests the bucket holds (its burst)."),
    "RateLimit-Remaining": _header("Requests left now."),
    "RateLimit-Reset": _header("Seconds until the bucket is full again."),
}
_HEADERS = {
    "429": {"Retry-After": _RETRY_AFTER, **_RATE_LIMIT},
    "503": {"Retry-After": _RETRY_AFTER},
}


def error_responses() -> dict[str, Any]:
    """`#/components/responses/error_<status>` (the envelope) and `prediction_<status>`."""
    responses: dict[str, Any] = {}
    for status, text in ERROR_DESCRIPTIONS.items():
        for prefix, schema in (("error", ERROR), ("prediction", PREDICTION_ERROR)):
            response: dict[str, Any] = {
                "description": text,
                "content": {"application/json": {"schema": schema}},
            }
            if status in _HEADERS:
                response["headers"] = _HEADERS[status]
            responses[f"{prefix}_{status}"] = response
    return responses


# Which routes can answer 409 and 413 besides the statuses every route of their kind can.
CONFLICTS = {
    ("post", "/api/v1/auth/register"),
    ("post", "/api/v1/models"),
    ("patch", "/api/v1/models/{model_id}"),
    ("delete", "/api/v1/models/{model_id}"),
    ("delete", "/api/v1/models/{model_id}/versions/{ref}"),
    ("post", "/api/v1/deployments"),
    ("patch", "/api/v1/deployments/{deployment_id}"),
    ("post", "/api/v1/deployments/{deployment_id}/rollback"),
}
TOO_LARGE = {("post", "/api/v1/models/{model_id}/versions")}


def document_errors(path: str, method: str, operation: dict[str, Any], public: bool) -> None:
    """Give `operation` the error envelope for each status it can answer: 422 (replacing
    FastAPI's `{"detail": [...]}`, which the services never send), 503 everywhere, 401/403/429
    where credentials are needed, 404 where the path names an object, 409/413 where known."""
    responses = operation.setdefault("responses", {})
    statuses = (
        {"422", "503"} if operation.get("parameters") or operation.get("requestBody") else {"503"}
    )
    if not public:
        statuses |= {"401", "403", "429"}
    elif path.startswith("/api/v1/auth/"):
        statuses.add("429")  # per-IP limit on login and register
    if "{" in path or "404" in responses:  # an object in the path, or named by a query
        statuses.add("404")
    if (method, path) in CONFLICTS:
        statuses.add("409")
    if (method, path) in TOO_LARGE:
        statuses.add("413")
    if "422" in responses:
        statuses.add("422")
    for status in statuses:
        responses[status] = {"$ref": f"{ERROR_RESPONSES}error_{status}"}
