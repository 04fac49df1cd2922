"""KServe V1 `:explain` for the models that explain themselves exactly: linear models (alone or
at the end of a pipeline), whose prediction is a sum of per-feature terms `coef * value`.
Other models get a 501 naming what is supported rather than an approximate answer."""

from __future__ import annotations

from typing import Any

import numpy as np

from kubeserve_runtime.model import InvalidInput, ModelAdapter, ModelFailed


class NotExplainable(Exception):
    """This model has no exact explanation; the message says which models have one."""


def _split(model: Any) -> tuple[Any, Any]:
    steps = getattr(model, "steps", None)
    if isinstance(steps, list) and steps:
        return model[:-1], steps[-1][1]
    return None, model


def explainable(model: Any) -> bool:
    _, final = _split(model)
    return getattr(final, "coef_", None) is not None and hasattr(final, "intercept_")


def explain(adapter: ModelAdapter, x: Any) -> dict[str, Any]:
    """Per-row contributions of each (transformed) feature to the predicted class or value."""
    head, final = _split(adapter.model)
    if not explainable(adapter.model):
        raise NotExplainable(
            f":explain answers for linear models (coef_ and intercept_, alone or last in a "
            f"pipeline); this model is {adapter.signature.model_type}"
        )
    try:
        z = head.transform(x) if head is not None else x
        z = np.asarray(z.toarray() if hasattr(z, "toarray") else z, dtype=np.float64)
        names = _feature_names(head, adapter, z.shape[1])
        predictions = np.asarray(adapter.model.predict(x))
    except (ValueError, TypeError) as exc:
        raise InvalidInput(f"the model rejected the input: {exc}") from exc
    except Exception as exc:
        raise ModelFailed(f"the model raised {type(exc).__name__}: {exc}") from exc
    coef = np.atleast_2d(np.asarray(final.coef_, dtype=np.float64))
    intercept = np.atleast_1d(np.asarray(final.intercept_, dtype=np.float64))
    classes = getattr(final, "classes_", None)
    rows = []
    for i in range(z.shape[0]):
        row = 0
        if classes is not None and coef.shape[0] > 1:
            row = int(np.flatnonzero(classes == predictions[i])[0])
        terms = coef[row] * z[i]
        rows.append(
            {
                "prediction": predictions[i].item(),
                "intercept": float(intercept[row if intercept.size > 1 else 0]),
                "contributions": dict(zip(names, terms.tolist(), strict=True)),
            }
        )
    return {"explanations": rows}


def _feature_names(head: Any, adapter: ModelAdapter, width: int) -> list[str]:
    names: list[str] | None = None
    if head is not None:
        try:
            names = [str(n) for n in head.get_feature_names_out(adapter.feature_names)]
        except Exception:  # a transformer without feature names: positions below
            names = None
    elif adapter.feature_names is not None:
        names = list(adapter.feature_names)
    return names if names is not None and len(names) == width else [f"x{i}" for i in range(width)]
