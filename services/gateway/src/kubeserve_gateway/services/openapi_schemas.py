"""The component schemas the public OpenAPI document adds to the services' own: the error
envelope, and the prediction protocols' bodies (simple JSON, KServe V1, Open Inference Protocol
V2 with Triton's read-only model repository extension) as the model runtime answers them."""

from __future__ import annotations

from typing import Any

_REF = "#/components/schemas/"
_STRING = {"type": "string"}
_BOOL = {"type": "boolean"}


def _required(title: str, description: str, **properties: dict[str, Any]) -> dict[str, Any]:
    """An object schema whose properties are all required."""
    return {
        "title": title,
        "description": description,
        "type": "object",
        "required": list(properties),
        "properties": properties,
    }


ERROR = {"$ref": _REF + "ErrorEnvelope"}
PREDICTION_ERROR = {"$ref": _REF + "PredictionError"}

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
            ERROR,
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
        "required": ["name", "ready"],
        "properties": {"name": {"type": "string"}, "ready": {"type": "boolean"}},
    },
    "ServerLive": _required("ServerLive", "V2 server liveness.", live=_BOOL),
    "ServerReady": _required(
        "ServerReady", "V2 server readiness (503 while the model loads).", ready=_BOOL
    ),
    "V1ServerLive": _required(
        "V1ServerLive",
        "KServe V1 server liveness (`GET /` of the runtime).",
        status={"type": "string", "const": "alive"},
    ),
    "V1ModelList": _required(
        "V1ModelList",
        "KServe V1 `GET /v1/models`: the names of the models served (one).",
        models={"type": "array", "items": _STRING},
    ),
    "Explanation": {
        "title": "Explanation",
        "description": "One row's exact explanation by a linear model: the predicted class or "
        "value, the intercept and each (transformed) feature's term `coef * value`.",
        "type": "object",
        "required": ["prediction", "intercept", "contributions"],
        "properties": {
            "prediction": {},
            "intercept": {"type": "number"},
            "contributions": {"type": "object", "additionalProperties": {"type": "number"}},
        },
    },
    "ExplainResponse": {
        "title": "ExplainResponse",
        "type": "object",
        "required": ["explanations"],
        "properties": {"explanations": {"type": "array", "items": {"$ref": _REF + "Explanation"}}},
    },
    "RepositoryIndexRequest": {
        "title": "RepositoryIndexRequest",
        "description": "Triton's repository index request; `ready` is accepted and the one "
        "served model is always listed.",
        "type": "object",
        "properties": {"ready": {"type": "boolean"}},
    },
    "RepositoryModel": _required(
        "RepositoryModel",
        "The served model in the repository index.",
        name=_STRING,
        version=_STRING,
        state={"$ref": _REF + "RepositoryModelState"},
    ),
    "RepositoryModelState": {
        "title": "RepositoryModelState",
        "description": "`LOADING` until the model is loaded, then `READY`.",
        "type": "string",
        "enum": ["READY", "LOADING"],
    },
    "RepositoryIndex": {
        "title": "RepositoryIndex",
        "description": "Triton's model repository index: the one model this deployment serves.",
        "type": "array",
        "items": {"$ref": _REF + "RepositoryModel"},
    },
    "RepositoryLoaded": {
        "title": "RepositoryLoaded",
        "description": "Loading the served model again succeeds (it is loaded) with `{}`.",
        "type": "object",
        "maxProperties": 0,
    },
}
