"""What of a build goes into its `VersionBuilt` event: rebuilt from known fields only (the trial
child's output is untrusted) and cut to fit the bus's size limit (the report has everything)."""

from __future__ import annotations

import json
from typing import Any

_EVENT_LIST_CAP = 2000
_MAX_TEXT = 300  # classes / feature names carried in the event (the report has all)


def _text(value: Any) -> str:
    return str(value)[:_MAX_TEXT]


def _scalar(value: Any) -> Any:
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else str(value)
    return _text(value)


def event_signature(signature: dict[str, Any]) -> dict[str, Any]:
    """The signature for the event, rebuilt from the known fields only (the trial child's
    output is untrusted) with long lists cut (the full one is in the report)."""
    out: dict[str, Any] = {"model_type": _text(signature.get("model_type", ""))}
    n = signature.get("n_features_in")
    out["n_features_in"] = n if isinstance(n, int) and not isinstance(n, bool) else None
    for key, convert in (("feature_names_in", _text), ("classes", _scalar)):
        values = signature.get(key)
        if isinstance(values, list):
            out[key] = [convert(v) for v in values[:_EVENT_LIST_CAP]]
            if len(values) > _EVENT_LIST_CAP:
                out[f"{key}_truncated"] = True
        else:
            out[key] = None
    out["has_predict_proba"] = signature.get("has_predict_proba") is True
    outputs = signature.get("outputs")
    out["outputs"] = [_text(o) for o in outputs[:10]] if isinstance(outputs, list) else []
    smoke = signature.get("smoke")
    if isinstance(smoke, dict):
        if len(json.dumps(smoke, default=str)) > 4096:
            smoke = {"ok": smoke.get("ok") is True, "truncated": True}
        out["smoke"] = smoke
    return out
