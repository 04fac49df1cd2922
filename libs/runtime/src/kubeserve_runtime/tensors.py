"""Open Inference Protocol V2 tensors: JSON and binary-extension decoding and encoding.

The binary tensor data extension (Triton's, also spoken by KServe) is what tritonclient sends
by default, so a third-party client works unchanged only if it is understood here.
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np

DATATYPES: dict[str, Any] = {
    "BOOL": np.bool_,
    "UINT8": np.uint8,
    "UINT16": np.uint16,
    "UINT32": np.uint32,
    "UINT64": np.uint64,
    "INT8": np.int8,
    "INT16": np.int16,
    "INT32": np.int32,
    "INT64": np.int64,
    "FP16": np.float16,
    "FP32": np.float32,
    "FP64": np.float64,
    "BYTES": np.object_,
}
# Which numpy kinds a JSON array may have for each datatype family; JSON has no int/float
# distinction for whole numbers, so 1.0 is accepted where an integer is expected only if
# it is integral (checked below).
_KINDS = {"BOOL": "b", "INT": "iub", "UINT": "iub", "FP": "iufb", "BYTES": "USO"}


class TensorError(ValueError):
    """The request's tensor is malformed; the message says what was expected."""


def datatype_of(arr: np.ndarray) -> str:
    """The OIP datatype name for a numpy array."""
    kind = arr.dtype.kind
    if kind == "b":
        return "BOOL"
    if kind in "iu":
        return ("UINT" if kind == "u" else "INT") + str(arr.dtype.itemsize * 8)
    if kind == "f":
        return "FP" + str(arr.dtype.itemsize * 8)
    return "BYTES"


def _family(datatype: str) -> str:
    for prefix in ("UINT", "INT", "FP"):
        if datatype.startswith(prefix):
            return prefix
    return datatype


def _shape(tensor: dict[str, Any], where: str) -> list[int]:
    shape = tensor.get("shape")
    if not isinstance(shape, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
    ):
        raise TensorError(f"{where}: 'shape' must be a list of non-negative integers")
    return shape


def _decode_bytes_buffer(raw: bytes, count: int, where: str) -> np.ndarray:
    # Each element is a 4-byte little-endian length followed by that many bytes.
    out = np.empty(count, dtype=object)
    pos = 0
    for i in range(count):
        if pos + 4 > len(raw):
            raise TensorError(f"{where}: binary BYTES data ends before element {i}")
        (length,) = struct.unpack_from("<I", raw, pos)
        pos += 4
        chunk = raw[pos : pos + length]
        if len(chunk) != length:
            raise TensorError(f"{where}: binary BYTES element {i} is truncated")
        out[i] = _text(chunk)
        pos += length
    if pos != len(raw):
        raise TensorError(f"{where}: binary BYTES data has {len(raw) - pos} trailing bytes")
    return out


def _text(chunk: bytes) -> Any:
    # Strings are what scikit-learn pipelines (encoders, vectorisers) expect; keep raw bytes
    # only when they are not UTF-8.
    try:
        return chunk.decode("utf-8")
    except UnicodeDecodeError:
        return chunk


def decode_tensor(tensor: Any, binary: bytes | None = None) -> np.ndarray:
    """Turn one request input (JSON object, with its binary chunk if any) into an array."""
    if not isinstance(tensor, dict):
        raise TensorError("each input must be an object with name, shape, datatype and data")
    name = tensor.get("name")
    if not isinstance(name, str) or not name:
        raise TensorError("each input needs a 'name'")
    where = f"input '{name}'"
    datatype = tensor.get("datatype")
    if datatype not in DATATYPES:
        raise TensorError(
            f"{where}: unsupported datatype {datatype!r}; expected one of {', '.join(DATATYPES)}"
        )
    shape = _shape(tensor, where)
    count = int(np.prod(shape)) if shape else 1
    dtype = DATATYPES[datatype]
    if binary is not None:
        if datatype == "BYTES":
            arr = _decode_bytes_buffer(binary, count, where)
        else:
            itemsize = np.dtype(dtype).itemsize
            if len(binary) != count * itemsize:
                raise TensorError(
                    f"{where}: shape {shape} of {datatype} needs {count * itemsize} bytes of "
                    f"binary data, got {len(binary)}"
                )
            arr = np.frombuffer(binary, dtype=np.dtype(dtype).newbyteorder("<")).astype(dtype)
        return arr.reshape(shape)
    if "data" not in tensor:
        raise TensorError(f"{where}: missing 'data'")
    data = tensor["data"]
    if not isinstance(data, list):
        data = [data]
    try:
        arr = np.asarray(data, dtype=object if datatype == "BYTES" else None)
    except ValueError as exc:
        raise TensorError(f"{where}: 'data' is ragged; expected shape {shape}") from exc
    if arr.size != count:
        raise TensorError(f"{where}: shape {shape} needs {count} values, got {arr.size}")
    family = _family(datatype)
    if datatype == "BYTES":
        flat = arr.reshape(-1)
        for i, value in enumerate(flat):
            if not isinstance(value, str | bytes):
                raise TensorError(f"{where}: BYTES data must be strings, element {i} is {value!r}")
        return flat.reshape(shape)
    if family in ("INT", "UINT") and arr.dtype.kind == "f":
        flat = arr.reshape(-1)
        fractional = flat[np.mod(flat, 1) != 0]
        shown = fractional[0] if fractional.size else flat[0]
        raise TensorError(f"{where}: datatype {datatype} expects integers, got {shown.item()!r}")
    if arr.dtype.kind not in _KINDS[family] or (arr.size and arr.dtype == object):
        expected = {"BOOL": "booleans", "INT": "integers", "UINT": "integers"}.get(
            family, "numbers"
        )
        raise TensorError(f"{where}: datatype {datatype} expects {expected}, got {_sample(arr)}")
    if family == "UINT" and arr.size and arr.min() < 0:
        raise TensorError(f"{where}: datatype {datatype} expects non-negative integers")
    return arr.astype(dtype, copy=False).reshape(shape)


def _sample(arr: np.ndarray) -> str:
    flat = arr.reshape(-1)
    for value in flat[:1000]:
        plain = value.item() if isinstance(value, np.generic) else value
        if not isinstance(plain, int | float) or isinstance(plain, bool):
            return f"{type(plain).__name__} {plain!r}"
    return f"{arr.dtype.name} values"


def encode_tensor(name: str, arr: np.ndarray, binary: bool) -> tuple[dict[str, Any], bytes | None]:
    """An output tensor as OIP JSON, or as JSON metadata plus its binary chunk."""
    arr = np.asarray(arr)
    datatype = datatype_of(arr)
    out: dict[str, Any] = {"name": name, "shape": list(arr.shape), "datatype": datatype}
    if binary:
        if datatype == "BYTES":
            parts = []
            for value in arr.reshape(-1):
                raw = value if isinstance(value, bytes) else str(value).encode("utf-8")
                parts.append(struct.pack("<I", len(raw)) + raw)
            chunk = b"".join(parts)
        else:
            chunk = np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("<")).tobytes()
        out["parameters"] = {"binary_data_size": len(chunk)}
        return out, chunk
    flat = arr.reshape(-1)
    if datatype == "BYTES":
        out["data"] = [
            v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in flat
        ]
    else:
        out["data"] = flat.tolist()
    return out, None
