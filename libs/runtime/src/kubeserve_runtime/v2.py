"""Open Inference Protocol V2 codec: an infer request's JSON (plus binary tensors) to model
input, and the model's outputs back to an infer response."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
from starlette.responses import Response

from kubeserve_runtime.http import HttpError, json_response, parse_json
from kubeserve_runtime.model import InvalidInput, ModelAdapter
from kubeserve_runtime.tensors import decode_tensor, encode_tensor

if TYPE_CHECKING:
    import pandas as pd


def _as_column(name: str, arr: np.ndarray) -> np.ndarray:
    if arr.ndim == 1:
        return arr
    if arr.ndim == 2 and arr.shape[1] == 1:
        return arr.reshape(-1)
    raise InvalidInput(
        f"input '{name}': with content_type pd each input is one column of shape [N] or "
        f"[N, 1], got {list(arr.shape)}"
    )


def _split_binary(headers: Mapping[str, str], body: bytes) -> tuple[bytes, bytes]:
    header_length = headers.get("inference-header-content-length")
    if header_length is None:
        return body, b""
    try:
        n = int(header_length)
    except ValueError as exc:
        raise HttpError(400, "Inference-Header-Content-Length must be an integer") from exc
    if n < 0 or n > len(body):
        raise HttpError(400, "Inference-Header-Content-Length exceeds the body size")
    return body[:n], body[n:]


def _decode_inputs(inputs: list[Any], binary: bytes) -> list[tuple[str, np.ndarray]]:
    arrays: list[tuple[str, np.ndarray]] = []
    offset = 0
    for tensor in inputs:
        chunk = None
        params = tensor.get("parameters") if isinstance(tensor, dict) else None
        if isinstance(params, dict) and "binary_data_size" in params:
            size = params["binary_data_size"]
            if not isinstance(size, int) or size < 0 or offset + size > len(binary):
                raise HttpError(400, f"input {tensor.get('name')!r}: bad binary_data_size")
            chunk = binary[offset : offset + size]
            offset += size
        arrays.append((str(tensor.get("name")), decode_tensor(tensor, chunk)))
    return arrays


def _selected_outputs(
    payload: dict[str, Any], parameters: dict[str, Any], adapter: ModelAdapter
) -> list[tuple[str, bool]]:
    binary_default = bool(parameters.get("binary_data_output", False))
    requested = payload.get("outputs")
    if requested is None:
        return [(name, binary_default) for name in adapter.outputs]
    if not isinstance(requested, list):
        raise HttpError(400, "'outputs' must be a list of {name} objects")
    selected: list[tuple[str, bool]] = []
    for out in requested:
        name = out.get("name") if isinstance(out, dict) else None
        canonical = adapter.output_key(name) if isinstance(name, str) else None
        if canonical is None:
            raise HttpError(
                400,
                f"unknown output {name!r}; this model has: {', '.join(adapter.output_names)}",
            )
        out_params = out.get("parameters") or {}
        binary_flag = out_params.get("binary_data", binary_default)
        selected.append((canonical, bool(binary_flag)))
    return selected


def decode_infer_request(
    headers: Mapping[str, str], body: bytes, adapter: ModelAdapter
) -> tuple[dict[str, Any], Any, list[tuple[str, bool]]]:
    """(the request JSON, the model input, the wanted outputs as (key, binary) pairs)."""
    body, binary = _split_binary(headers, body)
    payload = parse_json(body)
    if not isinstance(payload, dict):
        raise HttpError(400, "the inference request must be a JSON object")
    inputs = payload.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise HttpError(400, "the inference request needs a non-empty 'inputs' list")
    parameters = payload.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise HttpError(400, "'parameters' must be an object")
    arrays = _decode_inputs(inputs, binary)

    x: np.ndarray | pd.DataFrame
    if parameters.get("content_type") == "pd" or len(arrays) > 1:
        columns = {name: _as_column(name, arr) for name, arr in arrays}
        lengths = {len(col) for col in columns.values()}
        if len(lengths) > 1:
            raise InvalidInput(f"all columns need the same number of rows, got {sorted(lengths)}")
        x = adapter.prepare_columns(columns)
    else:
        x = adapter.prepare_matrix(arrays[0][1])
    return payload, x, _selected_outputs(payload, parameters, adapter)


def infer_response(
    adapter: ModelAdapter,
    payload: dict[str, Any],
    result: dict[str, np.ndarray],
    selected: list[tuple[str, bool]],
) -> Response:
    outputs = []
    chunks: list[bytes] = []
    for key, binary in selected:
        tensor, chunk = encode_tensor(adapter.output_name(key), result[key], binary)
        outputs.append(tensor)
        if chunk is not None:
            chunks.append(chunk)
    request_id = payload.get("id")
    body = {
        "model_name": adapter.name,
        "model_version": adapter.version,
        "id": request_id if isinstance(request_id, str) and request_id else uuid.uuid4().hex,
        "outputs": outputs,
    }
    if not chunks:
        return json_response(body)
    header = json.dumps(body, separators=(",", ":")).encode()
    return Response(
        header + b"".join(chunks),
        200,
        media_type="application/octet-stream",
        headers={"Inference-Header-Content-Length": str(len(header))},
    )
