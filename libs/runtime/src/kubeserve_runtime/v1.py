"""KServe V1 codec (`{"instances": [...]}` or `{"records": [...]}` in, `{"predictions": [...]}`
out), also the shape of the simple `POST /predict`."""

from __future__ import annotations

from typing import Any

import numpy as np

from kubeserve_runtime.http import HttpError, parse_json
from kubeserve_runtime.model import PREDICT, PREDICT_PROBA, InvalidInput, ModelAdapter


def _instances_array(instances: list[Any]) -> np.ndarray:
    try:
        return np.asarray(instances, dtype=np.float64)
    except (ValueError, TypeError):
        pass
    lengths = {len(row) for row in instances if isinstance(row, list)}
    if any(isinstance(row, list) for row in instances) and (
        len(lengths) > 1 or not all(isinstance(row, list) for row in instances)
    ):
        raise InvalidInput(
            "instances must be rows of equal length; got rows of "
            f"{', '.join(str(n) for n in sorted(lengths))} values"
        )
    # Not all numbers: keep the values as they are and let the model decide (a pipeline with
    # an encoder takes strings); numeric models reject them with a 400 below.
    return np.asarray(instances, dtype=object)


def decode_predict_request(body: bytes, adapter: ModelAdapter) -> Any:
    """The model input of a V1 request body."""
    payload = parse_json(body)
    if not isinstance(payload, dict):
        raise HttpError(400, "expected a JSON object with 'instances' or 'records'")
    if "records" in payload:
        records = payload["records"]
        if not isinstance(records, list):
            raise InvalidInput("'records' must be a list of objects")
        return adapter.prepare_records(records)
    instances = payload.get("instances", payload.get("inputs"))
    if instances is None:
        raise InvalidInput(
            "expected 'instances' (a list of rows of feature values) or 'records' "
            "(a list of objects keyed by feature name)"
        )
    if not isinstance(instances, list) or not instances:
        raise InvalidInput("'instances' must be a non-empty list of rows")
    if all(isinstance(row, dict) for row in instances):
        return adapter.prepare_records(instances)
    return adapter.prepare_matrix(_instances_array(instances))


def wanted_outputs(adapter: ModelAdapter) -> frozenset[str]:
    return frozenset((PREDICT, PREDICT_PROBA) if adapter.has_proba else (PREDICT,))


def predict_body(result: dict[str, np.ndarray]) -> dict[str, Any]:
    body: dict[str, Any] = {"predictions": result[PREDICT].tolist()}
    if PREDICT_PROBA in result:
        body["probabilities"] = result[PREDICT_PROBA].tolist()
    return body
