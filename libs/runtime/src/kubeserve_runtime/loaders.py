"""Load a model artifact (local path or s3:// URI) and describe its signature.

The builder's sandboxed child and the runtime both call `load_model` and `signature`, so a
model that validated at build time loads the same way in its deployment. Loading a pickle
runs code: only ever call this in a sandbox or in the tenant's own runtime.
"""

from __future__ import annotations

import importlib
import os
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np

# Files the loader looks for, in order, when it is given a directory (an artifact prefix).
MODEL_FILE_NAMES = (
    "model.joblib",
    "model.pkl",
    "model.pickle",
    "model.onnx",
    "model.json",
    "model.ubj",
    "model.xgb",
    "model.bst",
    "model.txt",
    "model.lgb",
)
_PICKLE_SUFFIXES = {".joblib", ".pkl", ".pickle", ".sav", ".jbl"}
_XGBOOST_SUFFIXES = {".json", ".ubj", ".xgb", ".bst", ".model"}
_LIGHTGBM_SUFFIXES = {".txt", ".lgb"}
# Sidecar files next to a model that are never the model itself.
_NOT_MODELS = {"requirements.txt", "build-report.json", "signature.json"}


class ModelLoadError(Exception):
    """The artifact could not be found, fetched or deserialised into a usable model."""


class MissingDependencyError(ModelLoadError):
    """The artifact's format needs a library that is not installed."""


def _require(module: str, extra: str) -> Any:
    # Optional frameworks are imported only when an artifact needs them, so the base image
    # starts fast and a missing one is a clear message rather than an ImportError at import.
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"this model needs the '{module}' package, which is not installed; add it to "
            f"requirements.txt (or install kubeserve-runtime[{extra}])"
        ) from exc


# -- wrappers giving native boosters and ONNX sessions the estimator interface -----------------


class _BoosterModel:
    """What the booster wrappers share: `predict_proba` exists only when the objective yields
    probabilities (as on a scikit-learn classifier), one column per class."""

    _proba: bool

    def _raw(self, x: Any) -> np.ndarray:
        raise NotImplementedError

    def __getattr__(self, name: str) -> Any:
        if name == "predict_proba" and self.__dict__.get("_proba"):
            return self._predict_proba
        raise AttributeError(name)

    def _predict_proba(self, x: Any) -> np.ndarray:
        out = self._raw(x)
        if out.ndim == 1:
            return np.column_stack([1.0 - out, out])
        return out


class XGBoostBoosterModel(_BoosterModel):
    """An `xgboost.Booster` with predict/predict_proba shaped like scikit-learn's."""

    def __init__(self, booster: Any) -> None:
        self.booster = booster
        self._xgb = _require("xgboost", "xgboost")
        self.n_features_in_ = int(booster.num_features())
        names = booster.feature_names
        if names:
            self.feature_names_in_ = np.asarray(names, dtype=object)
        config = booster.save_config()
        objective = ""
        try:
            import json

            objective = json.loads(config)["learner"]["objective"]["name"]
        except (KeyError, ValueError):
            objective = ""
        self.objective = objective
        self._proba = objective.startswith(("binary:logistic", "multi:softprob"))
        self.predict_dtype = np.int64 if self._proba else np.float32
        self.proba_dtype = np.float32  # the booster computes in single precision

    def _raw(self, x: Any) -> np.ndarray:
        out: np.ndarray = np.asarray(self.booster.predict(self._xgb.DMatrix(x)))
        return out

    def predict(self, x: Any) -> np.ndarray:
        out = self._raw(x)
        if self.objective.startswith("binary:logistic"):
            return (out > 0.5).astype(np.int64)
        if self.objective.startswith("multi:softprob"):
            return np.asarray(np.argmax(out, axis=1), dtype=np.int64)
        return out


class LightGBMBoosterModel(_BoosterModel):
    """A `lightgbm.Booster` with predict/predict_proba shaped like scikit-learn's."""

    def __init__(self, booster: Any) -> None:
        self.booster = booster
        self.n_features_in_ = int(booster.num_feature())
        self.feature_names_in_ = np.asarray(booster.feature_name(), dtype=object)
        objective = str(booster.params.get("objective", "")) if booster.params else ""
        if not objective:
            objective = str(booster.dump_model(num_iteration=0).get("objective", ""))
        self.objective = objective.split(" ")[0]
        self._proba = self.objective in {"binary", "multiclass", "softmax", "multiclassova"}
        self.predict_dtype = np.int64 if self._proba else np.float64
        self.proba_dtype = np.float64

    def _raw(self, x: Any) -> np.ndarray:
        return np.asarray(self.booster.predict(x))

    def predict(self, x: Any) -> np.ndarray:
        out = self._raw(x)
        if self.objective == "binary":
            return (out > 0.5).astype(np.int64)
        if self._proba:
            return np.asarray(np.argmax(out, axis=1), dtype=np.int64)
        return out


_ONNX_TYPES = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(bool)": np.bool_,
    "tensor(string)": np.object_,
}


class OnnxModel:
    """An onnxruntime session with one 2-D input; output 0 is the prediction, 1 the proba."""

    def __init__(self, session: Any) -> None:
        self.session = session
        inputs = session.get_inputs()
        if len(inputs) != 1:
            raise ModelLoadError(
                f"ONNX models with one input tensor are supported, this one has {len(inputs)}"
            )
        self.input_name = inputs[0].name
        self.input_dtype = _ONNX_TYPES.get(inputs[0].type, np.float32)
        shape = inputs[0].shape
        if len(shape) == 2 and isinstance(shape[1], int):
            self.n_features_in_ = int(shape[1])
        outputs = session.get_outputs()
        self.output_names = [o.name for o in outputs]
        self.predict_dtype = _ONNX_TYPES.get(outputs[0].type, np.float32)
        self._proba = len(self.output_names) > 1
        if self._proba:
            # skl2onnx's ZipMap is `seq(map(int64,tensor(float)))`: its values are float too.
            kind = outputs[1].type
            self.proba_dtype = np.float64 if "double" in kind else np.float32

    def _run(self, x: Any, index: int) -> np.ndarray:
        arr: np.ndarray = np.asarray(x, dtype=self.input_dtype)
        result = self.session.run([self.output_names[index]], {self.input_name: arr})[0]
        if isinstance(result, list) and result and isinstance(result[0], dict):
            # skl2onnx's ZipMap output: a list of {label: probability} dicts.
            keys = sorted(result[0])
            return np.asarray([[row[k] for k in keys] for row in result], dtype=self.proba_dtype)
        return np.asarray(result)

    def predict(self, x: Any) -> np.ndarray:
        out = self._run(x, 0)
        return out.reshape(-1) if out.ndim == 2 and out.shape[1] == 1 else out

    def __getattr__(self, name: str) -> Any:
        if name == "predict_proba" and self.__dict__.get("_proba"):
            return lambda x: self._run(x, 1)
        raise AttributeError(name)


# -- locating and fetching the artifact -------------------------------------------------------


def _s3_client() -> Any:
    boto3 = _require("boto3", "s3")
    endpoint = (
        os.environ.get("KUBESERVE_S3_ENDPOINT_URL")
        or os.environ.get("AWS_ENDPOINT_URL_S3")
        or os.environ.get("AWS_ENDPOINT_URL")
        or None
    )
    config = importlib.import_module("botocore.config").Config(
        connect_timeout=10, read_timeout=60, retries={"max_attempts": 3}
    )
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"),
        config=config,
    )


def fetch_s3(uri: str, dest_dir: str | Path | None = None) -> Path:
    """Download s3://bucket/key (one object, or every object under a prefix) to a local path.

    Endpoint and credentials come from the environment (`KUBESERVE_S3_ENDPOINT_URL` or
    `AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`).
    """
    parts = urlsplit(uri)
    bucket, key = parts.netloc, parts.path.lstrip("/")
    if not bucket:
        raise ModelLoadError(f"invalid S3 URI {uri!r}: expected s3://bucket/key")
    dest = Path(dest_dir or tempfile.mkdtemp(prefix="kubeserve-model-"))
    dest.mkdir(parents=True, exist_ok=True)
    client = _s3_client()
    try:
        if key and not key.endswith("/"):
            try:
                client.head_object(Bucket=bucket, Key=key)
            except Exception:  # not an object: try it as a prefix below
                key = key + "/"
            else:
                target = dest / Path(key).name
                client.download_file(bucket, key, str(target))
                return target
        paginator = client.get_paginator("list_objects_v2")
        found = False
        for page in paginator.paginate(Bucket=bucket, Prefix=key):
            for obj in page.get("Contents", []):
                rel = obj["Key"][len(key) :]
                if not rel or rel.endswith("/") or ".." in Path(rel).parts:
                    continue
                target = dest / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                client.download_file(bucket, obj["Key"], str(target))
                found = True
    except ModelLoadError:
        raise
    except Exception as exc:
        raise ModelLoadError(f"could not fetch {uri}: {exc}") from exc
    if not found:
        raise ModelLoadError(f"nothing found at {uri}")
    return dest


def find_model_file(directory: Path) -> Path:
    """Pick the model file inside an artifact directory."""
    for name in MODEL_FILE_NAMES:
        if (directory / name).is_file():
            return directory / name
    candidates = sorted(
        p
        for p in directory.iterdir()
        if p.is_file() and p.name not in _NOT_MODELS and not p.name.startswith(".")
    )
    if len(candidates) == 1:
        return candidates[0]
    raise ModelLoadError(
        f"cannot tell which file in {directory} is the model: expected one of "
        f"{', '.join(MODEL_FILE_NAMES)}; found {[p.name for p in candidates]}"
    )


def detect_format(path: Path) -> str:
    """'pickle', 'onnx', 'xgboost' or 'lightgbm', from the suffix and the first bytes."""
    suffix = path.suffix.lower()
    with path.open("rb") as fh:
        head = fh.read(512)
    if not head:
        raise ModelLoadError(f"{path.name} is empty")
    if suffix == ".onnx":
        return "onnx"
    if suffix in _LIGHTGBM_SUFFIXES and head.startswith(b"tree"):
        return "lightgbm"
    if suffix in _XGBOOST_SUFFIXES and (b'"learner"' in head or suffix in {".ubj", ".xgb"}):
        return "xgboost"
    if suffix == ".json":
        return "xgboost"
    if suffix in _PICKLE_SUFFIXES or head[:1] == b"\x80":
        return "pickle"
    if head.startswith(b"tree"):
        return "lightgbm"
    # joblib's compressed files: zlib, gzip, bz2, xz, lzma and lz4 magic numbers.
    if head[:1] == b"\x78" or head.startswith((b"\x1f\x8b", b"BZh", b"\xfd7zXZ", b"\x5d\x00")):
        return "pickle"
    raise ModelLoadError(f"unrecognised model format for {path.name}")


def load_model(source: str | os.PathLike[str], *, cache_dir: str | Path | None = None) -> Any:
    """Load the model at `source`: a file, an artifact directory or an s3:// URI."""
    text = os.fspath(source)
    if text.startswith("s3://"):
        path = fetch_s3(text, cache_dir)
    else:
        path = Path(text)
    if not path.exists():
        raise ModelLoadError(f"model not found: {path}")
    if path.is_dir():
        path = find_model_file(path)
    fmt = detect_format(path)
    model: Any
    try:
        if fmt == "pickle":
            import joblib

            # joblib.load reads plain pickles too, and memory-maps nothing unless asked.
            model = joblib.load(path)
        elif fmt == "onnx":
            ort = _require("onnxruntime", "onnx")
            model = OnnxModel(ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]))
        elif fmt == "xgboost":
            xgb = _require("xgboost", "xgboost")
            booster = xgb.Booster()
            booster.load_model(str(path))
            model = XGBoostBoosterModel(booster)
        else:
            lgb = _require("lightgbm", "lightgbm")
            model = LightGBMBoosterModel(lgb.Booster(model_file=str(path)))
    except ModelLoadError:
        raise
    except Exception as exc:
        raise ModelLoadError(f"could not load {path.name} as {fmt}: {exc}") from exc
    if not callable(getattr(model, "predict", None)):
        raise ModelLoadError(f"the object in {path.name} ({type(model).__name__}) has no predict()")
    return model


# -- signature -------------------------------------------------------------------------------


@dataclass
class Signature:
    """What a caller needs to know to build a valid request for a model."""

    model_type: str
    n_features_in: int | None = None
    feature_names_in: list[str] | None = None
    classes: list[Any] | None = None
    has_predict_proba: bool = False
    outputs: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _final_estimator(model: Any) -> Any:
    steps = getattr(model, "steps", None)
    if isinstance(steps, Sequence) and steps:
        last = steps[-1][1]
        if last not in (None, "passthrough"):
            return _final_estimator(last)
    return model


def _plain(values: Any) -> list[Any]:
    # numpy scalars are not JSON-serialisable; .tolist() turns them into Python values.
    return np.asarray(values).tolist()  # type: ignore[no-any-return]


def signature(model: Any) -> Signature:
    """Extract n_features_in_, feature_names_in_, classes_, outputs and predict_proba."""
    n_features = getattr(model, "n_features_in_", None)
    if n_features is None:
        n_features = getattr(_first_step(model), "n_features_in_", None)
    names = getattr(model, "feature_names_in_", None)
    if names is None:
        names = getattr(_first_step(model), "feature_names_in_", None)
    classes = getattr(model, "classes_", None)
    if classes is None:
        classes = getattr(_final_estimator(model), "classes_", None)
    has_proba = _has_predict_proba(model)
    model_type = type(model).__module__.split(".")[0] + "." + type(model).__name__
    return Signature(
        model_type=model_type,
        n_features_in=int(n_features) if n_features is not None else None,
        feature_names_in=[str(n) for n in names] if names is not None else None,
        classes=_plain(classes) if classes is not None else None,
        has_predict_proba=has_proba,
        outputs=["predict", "predict_proba"] if has_proba else ["predict"],
    )


def _first_step(model: Any) -> Any:
    steps = getattr(model, "steps", None)
    if isinstance(steps, Sequence) and steps:
        return steps[0][1]
    return None


def _has_predict_proba(model: Any) -> bool:
    # scikit-learn hides predict_proba behind available_if (e.g. SVC(probability=False),
    # a Pipeline whose last step lacks it): hasattr runs that check.
    try:
        return callable(getattr(model, "predict_proba", None))
    except Exception:  # an available_if check may raise anything
        return False


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m kubeserve_runtime.loaders fetch s3://bucket/prefix DEST` (used by start.sh)."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="python -m kubeserve_runtime.loaders")
    sub = parser.add_subparsers(dest="command", required=True)
    fetch = sub.add_parser("fetch", help="download an s3:// artifact (object or prefix)")
    fetch.add_argument("uri")
    fetch.add_argument("dest", type=Path)
    args = parser.parse_args(argv)
    try:
        print(fetch_s3(args.uri, args.dest))
    except ModelLoadError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
