"""The served model: input validation against its signature, and the predict call itself.

Validation errors raise `InvalidInput` with a message saying what was expected; the HTTP layer
turns them into 400s. `ModelAdapter.run` is synchronous and is only ever called off the event
loop (see `batching.ModelRunner`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from kubeserve_runtime.loaders import Signature, _final_estimator, signature
from kubeserve_runtime.tensors import datatype_of

PREDICT = "predict"
PREDICT_PROBA = "predict_proba"
DEFAULT_INPUT = "input-0"


class InvalidInput(ValueError):
    """The request does not fit the model (shape, features, types)."""


class ModelFailed(RuntimeError):
    """The model raised while predicting on valid-looking input."""


# Estimators whose predict() is exactly classes_[argmax(predict_proba())]: when both outputs are
# wanted, one predict_proba call serves both, halving the work for forests.
def _argmax_classifiers() -> tuple[type, ...]:
    try:
        from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier
        from sklearn.ensemble._forest import ForestClassifier
        from sklearn.tree import DecisionTreeClassifier, ExtraTreeClassifier
    except ImportError:  # pragma: no cover - scikit-learn is a hard dependency of the image
        return ()
    return (
        ForestClassifier,
        RandomForestClassifier,
        ExtraTreesClassifier,
        DecisionTreeClassifier,
        ExtraTreeClassifier,
    )


def _predict_is_argmax_proba(model: Any) -> bool:
    final = _final_estimator(model)
    if final is not model and type(model).__name__ != "Pipeline":
        return False
    bases = _argmax_classifiers()
    if not bases or not isinstance(final, bases):
        return False
    # Only when predict was not overridden by a subclass and the model is single-output.
    if getattr(type(final), "predict", None) not in {getattr(b, "predict", None) for b in bases}:
        return False
    classes = getattr(final, "classes_", None)
    return isinstance(classes, np.ndarray) and getattr(final, "n_outputs_", 1) == 1


def platform_of(model: Any) -> str:
    module = type(model).__module__.split(".")[0]
    name = type(model).__name__
    if name == "XGBoostBoosterModel" or module == "xgboost":
        return "xgboost"
    if name == "LightGBMBoosterModel" or module == "lightgbm":
        return "lightgbm"
    if name == "OnnxModel":
        return "onnx"
    if module == "sklearn":
        return "sklearn"
    return "python"


class ModelAdapter:
    """One loaded model with its name, version and signature."""

    def __init__(self, model: Any, name: str, version: str) -> None:
        self.model = model
        self.name = name
        self.version = version
        self.signature: Signature = signature(model)
        self.n_features = self.signature.n_features_in
        self.feature_names = self.signature.feature_names_in
        self.has_proba = self.signature.has_predict_proba
        self.outputs = list(self.signature.outputs)
        self.platform = platform_of(model)
        self._fast_predict = self.has_proba and _predict_is_argmax_proba(model)
        self._classes = getattr(_final_estimator(model), "classes_", None)
        input_dtype = getattr(model, "input_dtype", np.float64)
        self.input_datatype = datatype_of(np.empty(0, dtype=input_dtype))
        # Native tensor names where the artifact has them (an ONNX graph's `X`, `label`,
        # `probabilities`); `predict`/`predict_proba` otherwise, and always accepted as aliases.
        self.input_name = str(getattr(model, "input_name", None) or DEFAULT_INPUT)
        native = list(getattr(model, "output_names", None) or [])
        self._names = {key: key for key in self.outputs}
        for key, name in zip(self.outputs, native, strict=False):
            self._names[key] = str(name)
        self._keys = {name: key for key, name in self._names.items()}
        self._keys.update({key: key for key in self.outputs})
        self.output_names = [self._names[key] for key in self.outputs]
        self._datatypes = {PREDICT: self._predict_datatype()}
        if self.has_proba:
            declared = getattr(model, "proba_dtype", None)
            self._datatypes[PREDICT_PROBA] = (
                datatype_of(np.empty(0, dtype=declared)) if declared is not None else "FP64"
            )

    def output_name(self, key: str) -> str:
        """The name an output (`predict`, `predict_proba`) has on the wire."""
        return self._names[key]

    def output_key(self, name: str) -> str | None:
        """The output a requested name means (its native name or the generic one), or None."""
        return self._keys.get(name)

    def learn_datatypes(self) -> None:
        """Make the metadata's datatypes the ones responses will carry: one prediction on a
        row of zeros (numeric models with a known width only; anything else keeps the
        declared types). Runs once at start-up, off the event loop."""
        n = self.n_features
        if n is None or self.feature_names is not None or self.input_datatype == "BYTES":
            return
        try:
            x = np.zeros((1, n), dtype=getattr(self.model, "input_dtype", np.float64))
            out = self.run(x, frozenset(self.outputs))
        except Exception:  # a model that refuses zeros keeps its declared types
            return
        for key, value in out.items():
            self._datatypes[key] = datatype_of(np.asarray(value))

    # -- metadata --------------------------------------------------------------------------

    def metadata(self) -> dict[str, Any]:
        """OIP model metadata: inputs and outputs with datatypes and shapes (-1 = any)."""
        n = self.n_features if self.n_features is not None else -1
        inputs = [{"name": self.input_name, "datatype": self.input_datatype, "shape": [-1, n]}]
        outputs = [
            {"name": self._names[PREDICT], "datatype": self._datatypes[PREDICT], "shape": [-1]}
        ]
        if self.has_proba:
            k = len(self.signature.classes) if self.signature.classes is not None else -1
            outputs.append(
                {
                    "name": self._names[PREDICT_PROBA],
                    "datatype": self._datatypes[PREDICT_PROBA],
                    "shape": [-1, k],
                }
            )
        parameters: dict[str, Any] = {"model_type": self.signature.model_type}
        if self.feature_names is not None:
            parameters["feature_names"] = self.feature_names
        if self.signature.classes is not None:
            parameters["classes"] = self.signature.classes
        return {
            "name": self.name,
            "versions": [self.version],
            "platform": self.platform,
            "inputs": inputs,
            "outputs": outputs,
            "parameters": parameters,
        }

    def _predict_datatype(self) -> str:
        if self.signature.classes is not None:
            return datatype_of(np.asarray(self.signature.classes))
        # Wrapped boosters and ONNX graphs know their output type; estimators regress to float.
        declared = getattr(self.model, "predict_dtype", np.float64)
        return datatype_of(np.empty(0, dtype=declared))

    # -- input preparation (on the event loop: cheap checks only) ---------------------------

    def prepare_matrix(self, arr: np.ndarray) -> np.ndarray | pd.DataFrame:
        """Check a row-major array against the model's feature count."""
        n = self.n_features
        if arr.dtype == object:
            arr = _numeric_if_possible(arr)
        if n is not None:
            if arr.ndim == 1 and n == 1:
                arr = arr.reshape(-1, 1)
            if arr.ndim != 2:
                raise InvalidInput(
                    f"expected a 2-D input of shape [N, {n}] (N rows of {n} features), "
                    f"got shape {list(arr.shape)}"
                )
            if arr.shape[1] != n:
                raise InvalidInput(f"expected {n} features, got {arr.shape[1]}")
        if arr.ndim == 0 or arr.shape[0] == 0:
            raise InvalidInput("expected at least one row")
        if self.feature_names is not None and arr.ndim == 2:
            # The model was fitted on a DataFrame (a ColumnTransformer may select by name):
            # give it the columns it knows, in its own order.
            return pd.DataFrame(arr, columns=self.feature_names)
        return arr

    def prepare_columns(self, columns: Mapping[str, Any]) -> pd.DataFrame:
        """Named columns (OIP `content_type: pd` inputs or records) to a model-ordered frame."""
        frame = pd.DataFrame(dict(columns))
        return self._order_frame(frame)

    def prepare_records(self, records: Sequence[Any]) -> pd.DataFrame:
        if not records:
            raise InvalidInput("expected at least one record")
        for i, rec in enumerate(records):
            if not isinstance(rec, dict):
                raise InvalidInput(f"records[{i}] must be an object of feature name -> value")
        return self._order_frame(pd.DataFrame.from_records(records))

    def _order_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        names = self.feature_names
        if names is not None:
            have = [str(c) for c in frame.columns]
            missing = [f for f in names if f not in have]
            extra = [c for c in have if c not in names]
            if missing or extra:
                parts = []
                if missing:
                    parts.append(f"missing features: {', '.join(missing)}")
                if extra:
                    parts.append(f"unexpected features: {', '.join(extra)}")
                raise InvalidInput(f"{'; '.join(parts)} (expected: {', '.join(names)})")
            frame = frame[names]
        elif self.n_features is not None and frame.shape[1] != self.n_features:
            raise InvalidInput(f"expected {self.n_features} features, got {frame.shape[1]}")
        if len(frame) == 0:
            raise InvalidInput("expected at least one row")
        if frame.isna().to_numpy().any() and not _accepts_missing(self.model):
            cols = [str(c) for c in frame.columns[frame.isna().any()]]
            raise InvalidInput(f"missing values (null) in features: {', '.join(cols)}")
        for col in frame.columns:
            if frame[col].dtype == object:
                converted = pd.to_numeric(frame[col], errors="coerce")
                if not converted.isna().any():
                    frame[col] = converted
        return frame

    # -- the model call (worker thread) ----------------------------------------------------

    def run(self, x: Any, want: frozenset[str]) -> dict[str, np.ndarray]:
        """Call the model for the wanted outputs; raises InvalidInput or ModelFailed."""
        out: dict[str, np.ndarray] = {}
        try:
            if PREDICT_PROBA in want and self.has_proba:
                proba = np.asarray(self.model.predict_proba(x))
                out[PREDICT_PROBA] = proba
                if PREDICT in want and self._fast_predict and self._classes is not None:
                    out[PREDICT] = self._classes.take(np.argmax(proba, axis=1), axis=0)
            if PREDICT in want and PREDICT not in out:
                out[PREDICT] = np.asarray(self.model.predict(x))
        except (ValueError, TypeError) as exc:
            # scikit-learn reports unusable input (a string in a numeric column, an unknown
            # category) as ValueError/TypeError: that is the caller's mistake, so a 400.
            raise InvalidInput(f"the model rejected the input: {exc}") from exc
        except Exception as exc:
            raise ModelFailed(f"the model raised {type(exc).__name__}: {exc}") from exc
        rows = _rows(x)
        for key, value in out.items():
            if value.ndim == 0 or value.shape[0] != rows:
                raise ModelFailed(
                    f"the model's {key} returned shape {list(value.shape)} for {rows} rows"
                )
        return out


def _rows(x: Any) -> int:
    return int(x.shape[0]) if hasattr(x, "shape") else len(x)


def _numeric_if_possible(arr: np.ndarray) -> np.ndarray:
    try:
        return arr.astype(np.float64)
    except (ValueError, TypeError):
        return arr


def _accepts_missing(model: Any) -> bool:
    # Estimators declaring allow_nan (HistGradientBoosting, imputing pipelines) take NaN.
    try:
        tags = model.__sklearn_tags__()
        return bool(getattr(tags.input_tags, "allow_nan", False))
    except Exception:  # not a scikit-learn estimator, or an old one
        return True
