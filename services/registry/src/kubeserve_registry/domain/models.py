"""The registry's rules as plain values: frameworks and the file types each accepts, model names,
version tags and statuses. No I/O here.

Extensions per framework (the builder's loaders decide how to read each one):

| framework | accepted model files |
|---|---|
| sklearn   | .joblib .pkl .pickle |
| xgboost   | .json .ubj .bst .model |
| lightgbm  | .txt .model |
| onnx      | .onnx |
| custom    | any of the above, or a .zip bundle (model file + code the builder inspects) |

PyTorch files (`.pt`, `.pth`, framework `pytorch`) are refused with a pointer to ONNX export:
the runtime has no torch (issue 13.6). `pytorch` stays in the enum so models created before
still read; creating one or uploading such a file is a 422.
"""

from __future__ import annotations

import enum
import re
from uuid import UUID


class Framework(enum.StrEnum):
    SKLEARN = "sklearn"
    XGBOOST = "xgboost"
    LIGHTGBM = "lightgbm"
    ONNX = "onnx"
    PYTORCH = "pytorch"
    CUSTOM = "custom"


_BASE_EXTENSIONS: dict[Framework, tuple[str, ...]] = {
    Framework.SKLEARN: (".joblib", ".pkl", ".pickle"),
    Framework.XGBOOST: (".json", ".ubj", ".bst", ".model"),
    Framework.LIGHTGBM: (".txt", ".model"),
    Framework.ONNX: (".onnx",),
}
PYTORCH_REFUSED = (
    "PyTorch models are not served: the runtime has no torch. Export the model to ONNX "
    "(torch.onnx.export(model, example_input, 'model.onnx')) and upload it with framework "
    "'onnx'"
)
_PYTORCH_EXTENSIONS = (".pt", ".pth")
ALLOWED_EXTENSIONS: dict[Framework, tuple[str, ...]] = {
    **_BASE_EXTENSIONS,
    Framework.CUSTOM: tuple(sorted({e for es in _BASE_EXTENSIONS.values() for e in es} | {".zip"})),
    Framework.PYTORCH: (),
}


class VersionStatus(enum.StrEnum):
    """`Uploading` is never stored today: the row is written only after the bytes are stored,
    directly as `Building`. It stays in the vocabulary for clients and a future resumable upload."""

    UPLOADING = "Uploading"
    BUILDING = "Building"
    READY = "Ready"
    FAILED = "Failed"


# DNS-1123 label: lower-case alphanumerics and '-', starting and ending alphanumeric, <= 63.
MODEL_NAME_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
_MODEL_NAME = re.compile(MODEL_NAME_PATTERN)
_TAG = re.compile(r"^v([1-9][0-9]{0,8})$")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
REQUIREMENTS_FILENAME = "requirements.txt"
MAX_FILENAME = 200


def is_valid_model_name(name: str) -> bool:
    return bool(_MODEL_NAME.match(name))


def version_tag(number: int) -> str:
    return f"v{number}"


def parse_version_ref(ref: str) -> int | UUID | None:
    """A path's `{tag-or-id}`: `v3` -> 3, a UUID -> that UUID, anything else -> None."""
    match = _TAG.match(ref)
    if match:
        return int(match.group(1))
    try:
        return UUID(ref)
    except ValueError:
        return None


class FilenameRejected(ValueError):
    """The uploaded file's name or type is not acceptable; the message says why."""


def extension_of(filename: str) -> str:
    dot = filename.rfind(".")
    return filename[dot:].lower() if dot > 0 else ""


def safe_model_filename(raw: str | None, framework: Framework) -> str:
    """The name the model file is stored under: the client's base name with unsafe characters
    replaced; its extension must be one the framework accepts."""
    if not raw:
        raise FilenameRejected("the 'model' field must be a file upload with a filename")
    base = raw.replace("\\", "/").rsplit("/", 1)[-1]
    name = _UNSAFE.sub("_", base).lstrip("._-")[-MAX_FILENAME:]
    ext = extension_of(name)
    if framework is Framework.PYTORCH or ext in _PYTORCH_EXTENSIONS:
        raise FilenameRejected(PYTORCH_REFUSED)
    allowed = ALLOWED_EXTENSIONS[framework]
    if not name or ext not in allowed:
        raise FilenameRejected(
            f"a {framework.value} model must be one of {', '.join(allowed)}; got {base!r}"
        )
    if name.lower() == REQUIREMENTS_FILENAME:
        raise FilenameRejected(f"the model file cannot be named {REQUIREMENTS_FILENAME}")
    return name


def decode_requirements(data: bytes) -> str:
    """Requirements must be UTF-8 text (the builder parses them; here only the encoding)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"requirements is not UTF-8 text (byte {exc.start})") from None
    if "\x00" in text:
        raise ValueError("requirements contains NUL characters")
    return text.removeprefix("\ufeff")
