"""What the public OpenAPI document says beyond the services' own documents: the prediction
routes (served by each deployment's runtime, so no service describes them) with the simple
JSON, KServe V1 and Open Inference Protocol V2 schemas, and the error envelope every route
answers with, by status."""

from __future__ import annotations

from typing import Any

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
    "502": "The deployment's replica answered with an invalid response",
    "503": "A dependency is unavailable (`database_unavailable`, `broker_unavailable`, "
    "`upstream_unavailable`, no ready replica): retry after `Retry-After` seconds",
}

_ERROR = {"$ref": _REF + "ErrorEnvelope"}
_PREDICTION_ERROR = {"$ref": _REF + "PredictionError"}

SCHEMAS: dict[str, Any] = {
    "ErrorEnvelope": {
        "title": "ErrorEnvelope",
        "description": "Every KubeServe error: a stable machine-readable code and a message.",
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {"type": "string", "examples": ["validation_error"]},
                    "message": {"type": "string"},
                    "details": {
                        "description": "More about the problem: for a 422 the list of "
                        "`{field, message, type}`, for a quota 409 what is in use.",
                        "anyOf": [{"type": "object"}, {"type": "array", "items": {}}],
                    },
                },
            }
        },
    },
    "PredictionError": {
        "title": "PredictionError",
        "description": "Errors of the prediction routes: the gateway's envelope, or the "
        'model runtime\'s own shape `{"error": "message"}` (the Open Inference Protocol\'s).',
        "anyOf": [
            _ERROR,
            {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
        ],
    },
    "PredictRequest": {
        "title": "PredictRequest",
        "description": "Rows of feature values (`instances`), or objects keyed by feature name "
        "(`records`).",
        "type": "object",
        "properties": {
            "instances": {"type": "array", "items": {"type": "array", "items": {}}},
            "records": {"type": "array", "items": {"type": "object"}},
        },
        "examples": [{"instances": [[5.1, 3.5, 1.4, 0.2]]}],
    },
    "PredictResponse": {
        "title": "PredictResponse",
        "type": "object",
        "required": ["predictions"],
        "properties": {
            "predictions": {"type": "array", "items": {}},
            "probabilities": {
                "type": "array",
                "items": {"type": "array", "items": {"type": "number"}},
                "description": "Per class, when the model has predict_proba.",
            },
        },
    },
    "InferTensor": {
        "title": "InferTensor",
        "description": "An Open Inference Protocol V2 tensor (row-major flat `data`).",
        "type": "object",
        "required": ["name", "shape", "datatype"],
        "properties": {
            "name": {"type": "string"},
            "shape": {"type": "array", "items": {"type": "integer"}},
            "datatype": {
                "type": "string",
                "enum": [
                    "BOOL",
                    "UINT8",
                    "UINT16",
                    "UINT32",
                    "UINT64",
                    "INT8",
                    "INT16",
                    "INT32",
                    "INT64",
                    "FP16",
                    "FP32",
                    "FP64",
                    "BYTES",
                ],
            },
            "parameters": {"type": "object"},
            "data": {"type": "array", "items": {}},
        },
    },
    "InferRequest": {
        "title": "InferRequest",
        "type": "object",
        "required": ["inputs"],
        "properties": {
            "id": {"type": "string"},
            "parameters": {"type": "object"},
            "inputs": {"type": "array", "items": {"$ref": _REF + "InferTensor"}},
            "outputs": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {"name": {"type": "string"}, "parameters": {"type": "object"}},
                },
            },
        },
    },
    "InferResponse": {
        "title": "InferResponse",
        "type": "object",
        "required": ["model_name", "outputs"],
        "properties": {
            "model_name": {"type": "string"},
            "model_version": {"type": "string"},
            "id": {"type": "string"},
            "parameters": {"type": "object"},
            "outputs": {"type": "array", "items": {"$ref": _REF + "InferTensor"}},
        },
    },
    "TensorMetadata": {
        "title": "TensorMetadata",
        "type": "object",
        "required": ["name", "datatype", "shape"],
        "properties": {
            "name": {"type": "string"},
            "datatype": {"type": "string"},
            "shape": {"type": "array", "items": {"type": "integer"}},
        },
    },
    "ModelMetadata": {
        "title": "ModelMetadata",
        "type": "object",
        "required": ["name", "platform", "inputs", "outputs"],
        "properties": {
            "name": {"type": "string"},
            "versions": {"type": "array", "items": {"type": "string"}},
            "platform": {"type": "string"},
            "inputs": {"type": "array", "items": {"$ref": _REF + "TensorMetadata"}},
            "outputs": {"type": "array", "items": {"$ref": _REF + "TensorMetadata"}},
        },
    },
    "ServerMetadata": {
        "title": "ServerMetadata",
        "type": "object",
        "required": ["name", "version", "extensions"],
        "properties": {
            "name": {"type": "string"},
            "version": {"type": "string"},
            "extensions": {"type": "array", "items": {"type": "string"}},
        },
    },
    "ModelReady": {
        "title": "ModelReady",
        "type": "object",
        "properties": {"name": {"type": "string"}, "ready": {"type": "boolean"}},
    },
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
    answer: str,
    *,
    body: str | None = None,
    params: tuple[dict[str, Any], ...] = (),
    errors: tuple[str, ...] = _PREDICT_ERRORS,
) -> dict[str, Any]:
    op: dict[str, Any] = {
        "tags": ["predictions"],
        "operationId": operation_id,
        "summary": summary,
        "parameters": [_DEPLOYMENT, *params],
        "responses": {"200": {"description": "OK", "content": _json(answer)}},
    }
    if body is not None:
        op["requestBody"] = {"required": True, "content": _json(body)}
    for status in errors:
        op["responses"][status] = {"$ref": f"{ERROR_RESPONSES}prediction_{status}"}
    return op


def prediction_paths() -> dict[str, dict[str, Any]]:
    base = "/api/v1/predict/{deployment_id}"
    v2m = f"{base}/v2/models/{{model_name}}"
    return {
        base: {
            "post": _op(
                "predict",
                "Predict (simple JSON): rows or records in, predictions out",
                "PredictResponse",
                body="PredictRequest",
            )
        },
        f"{base}/v1/models/{{model_name}}:predict": {
            "post": _op(
                "predict_v1",
                "KServe V1 predict",
                "PredictResponse",
                body="PredictRequest",
                params=(_MODEL,),
            )
        },
        f"{base}/v2": {
            "get": _op("server_metadata_v2", "V2 server metadata", "ServerMetadata",
                       errors=_READ_ERRORS)
        },
        f"{base}/v2/health/live": {
            "get": _op("server_live_v2", "V2 server live", "ModelReady", errors=_READ_ERRORS)
        },
        f"{base}/v2/health/ready": {
            "get": _op("server_ready_v2", "V2 server ready", "ModelReady", errors=_READ_ERRORS)
        },
        v2m: {
            "get": _op("model_metadata_v2", "V2 model metadata (native tensor names, datatypes)",
                       "ModelMetadata", params=(_MODEL,), errors=_READ_ERRORS)
        },
        f"{v2m}/ready": {
            "get": _op("model_ready_v2", "V2 model ready", "ModelReady", params=(_MODEL,),
                       errors=_READ_ERRORS)
        },
        f"{v2m}/infer": {
            "post": _op("infer_v2", "V2 inference (Open Inference Protocol)", "InferResponse",
                        body="InferRequest", params=(_MODEL,))
        },
        f"{v2m}/versions/{{model_version}}": {
            "get": _op("model_version_metadata_v2", "V2 model version metadata",
                       "ModelMetadata", params=(_MODEL, _VERSION), errors=_READ_ERRORS)
        },
        f"{v2m}/versions/{{model_version}}/infer": {
            "post": _op("infer_version_v2", "V2 inference on a model version", "InferResponse",
                        body="InferRequest", params=(_MODEL, _VERSION))
        },
    }  # fmt: skip


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
        for prefix, schema in (("error", _ERROR), ("prediction", _PREDICTION_ERROR)):
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
    if "{" in path:
        statuses.add("404")
    if (method, path) in CONFLICTS:
        statuses.add("409")
    if (method, path) in TOO_LARGE:
        statuses.add("413")
    if "422" in responses:
        statuses.add("422")
    for status in statuses:
        responses[status] = {"$ref": f"{ERROR_RESPONSES}error_{status}"}
