"""numpy arrays and pandas DataFrames in and out of predictions. numpy and pandas are optional:
they are imported only when such an object is passed or numpy output is asked for.

- simple JSON (`predict`): an array becomes `{"instances": rows}`, a DataFrame
  `{"records": [{column: value}, ...]}` (the model sees its feature names), a list `instances`;
- Open Inference Protocol V2 (`infer`): an array becomes one tensor (`name`, shape, datatype,
  flat data), a `{name: array}` mapping one tensor each, a DataFrame one 2-D tensor;
- `as_numpy=True` decodes `predictions` (or each V2 output, by name) into numpy arrays.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_DATATYPES = {
    "b": "BOOL",
    "u1": "UINT8", "u2": "UINT16", "u4": "UINT32", "u8": "UINT64",
    "i1": "INT8", "i2": "INT16", "i4": "INT32", "i8": "INT64",
    "f2": "FP16", "f4": "FP32", "f8": "FP64",
}  # fmt: skip
_NUMPY = {v: k for k, v in _DATATYPES.items()}


def _is_dataframe(value: Any) -> bool:
    return type(value).__name__ == "DataFrame" and hasattr(value, "to_dict")


def _is_array(value: Any) -> bool:
    return type(value).__module__ == "numpy" and hasattr(value, "tolist")


def _plain(value: Any) -> Any:
    """numpy scalars inside records become JSON numbers."""
    return value.item() if hasattr(value, "item") and type(value).__module__ == "numpy" else value


def simple_payload(data: Any) -> dict[str, Any]:
    """The body of `POST /predict/{id}` for `data`."""
    if isinstance(data, Mapping):
        return dict(data)
    if _is_dataframe(data):
        records = data.to_dict(orient="records")
        return {"records": [{str(k): _plain(v) for k, v in r.items()} for r in records]}
    if _is_array(data):
        rows = data.tolist()
        return {"instances": rows if data.ndim > 1 else [rows]}
    if isinstance(data, list | tuple):
        return {"instances": list(data)}
    raise TypeError(
        "predict() takes a dict body, a list of rows, a numpy array or a pandas DataFrame, "
        f"not {type(data).__name__}"
    )


def tensor(name: str, array: Any) -> dict[str, Any]:
    import numpy as np

    arr = np.asarray(array)
    if arr.dtype.kind in "USO":
        return {
            "name": name,
            "shape": list(arr.shape),
            "datatype": "BYTES",
            "data": [str(v) for v in arr.reshape(-1).tolist()],
        }
    key = "b" if arr.dtype.kind == "b" else f"{arr.dtype.kind}{arr.dtype.itemsize}"
    datatype = _DATATYPES.get(key)
    if datatype is None:
        raise TypeError(f"no V2 datatype for numpy dtype {arr.dtype}")
    return {
        "name": name,
        "shape": list(arr.shape),
        "datatype": datatype,
        "data": arr.reshape(-1).tolist(),
    }


def infer_payload(inputs: Any, name: str = "input-0") -> dict[str, Any]:
    """The body of `POST .../v2/models/{model}/infer` for `inputs`."""
    if isinstance(inputs, Mapping) and "inputs" in inputs:
        return dict(inputs)  # already a V2 request
    if isinstance(inputs, Mapping):
        return {"inputs": [tensor(str(k), v) for k, v in inputs.items()]}
    if _is_dataframe(inputs):
        return {"inputs": [tensor(name, inputs.to_numpy())]}
    if _is_array(inputs) or isinstance(inputs, list | tuple):
        return {"inputs": [tensor(name, inputs)]}
    raise TypeError(
        "infer() takes a V2 request dict, a numpy array, {name: array} or a pandas DataFrame, "
        f"not {type(inputs).__name__}"
    )


def decode_outputs(body: Mapping[str, Any]) -> dict[str, Any]:
    """A V2 response's outputs as `{name: numpy array}` of their shape and datatype."""
    import numpy as np

    decoded: dict[str, Any] = {}
    for output in body.get("outputs", []):
        datatype = output.get("datatype", "FP64")
        dtype = object if datatype == "BYTES" else np.dtype(_NUMPY.get(datatype, "f8"))
        decoded[output["name"]] = np.asarray(output.get("data", []), dtype=dtype).reshape(
            output.get("shape", [-1])
        )
    return decoded


def decode_predictions(body: Mapping[str, Any]) -> Any:
    import numpy as np

    return np.asarray(body.get("predictions", []))
