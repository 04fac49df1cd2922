"""Trial load of an untrusted model, run by the builder in a sandboxed child process.

`python -m kubeserve_runtime.trial [--path DIR]... MODEL_PATH` loads the model with the
runtime's own loader, extracts its signature and runs a smoke prediction on an all-zero row (a
DataFrame when the model knows its feature names), then prints one JSON object on the real
stdout. Everything the model itself prints goes to stderr, so a payload cannot garble (nor
easily forge) the result. `--path` puts a directory of unpacked wheels (the version's
wheelhouse) first on the import path, as the runtime's start.sh would install them.

Resource limits, isolation and the timeout are the parent's job (kubeserve_builder's sandbox
adapter): this module only loads and reports. Exit status: 0 with `"ok": true`, 1 with
`"ok": false`, a `phase` (import | load | signature) and an `error`.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
import traceback
from typing import Any

_SAMPLE = 5  # output values kept in the result


def _jsonable(value: Any) -> Any:
    try:
        import numpy as np

        arr = np.asarray(value)
        flat = arr.reshape(-1)[:_SAMPLE].tolist()
        return {"shape": list(arr.shape), "dtype": str(arr.dtype), "sample": _finite(flat)}
    except Exception:  # a model may return anything at all
        return {"repr": repr(value)[:200]}


def _finite(values: list[Any]) -> list[Any]:
    out: list[Any] = []
    for v in values:
        if isinstance(v, float) and not math.isfinite(v):
            out.append(str(v))
        elif isinstance(v, int | float | str | bool) or v is None:
            out.append(v)
        else:
            out.append(repr(v)[:50])
    return out


def _describe(exc: BaseException) -> str:
    root = exc
    while root.__cause__ is not None:
        root = root.__cause__
    if isinstance(root, MemoryError) or isinstance(exc, MemoryError):
        return "MemoryError: loading the model needs more memory than the trial allows"
    text = f"{type(exc).__name__}: {exc}"
    if root is not exc:
        text += f" (caused by {type(root).__name__}: {root})"
    return text[:2000]


def _smoke_input(sig: dict[str, Any]) -> tuple[Any, str] | None:
    import numpy as np

    names = sig.get("feature_names_in")
    n = sig.get("n_features_in")
    if names:
        import pandas as pd

        return pd.DataFrame([[0.0] * len(names)], columns=list(names)), "dataframe"
    if isinstance(n, int) and n > 0:
        return np.zeros((1, n)), "array"
    return None


def run(path: str) -> dict[str, Any]:
    timings: dict[str, float] = {}
    started = time.perf_counter()
    try:
        from kubeserve_runtime.loaders import load_model, signature
    except BaseException as exc:
        return {"ok": False, "phase": "import", "error": _describe(exc)}
    timings["import_ms"] = (time.perf_counter() - started) * 1000

    started = time.perf_counter()
    try:
        model = load_model(path)
    except BaseException as exc:  # the payload may raise anything, SystemExit included
        return {
            "ok": False,
            "phase": "load",
            "error": _describe(exc),
            "traceback": traceback.format_exc(limit=5)[-3000:],
            "timings": timings,
        }
    timings["load_ms"] = (time.perf_counter() - started) * 1000

    try:
        sig = signature(model).to_dict()
    except BaseException as exc:
        return {"ok": False, "phase": "signature", "error": _describe(exc), "timings": timings}

    smoke: dict[str, Any] = {"ok": False}
    made = _smoke_input(sig)
    if made is None:
        smoke["skipped"] = "the model declares neither n_features_in_ nor feature_names_in_"
    else:
        x, kind = made
        smoke["input"] = {"kind": kind, "shape": [1, int(x.shape[1])]}
        started = time.perf_counter()
        try:
            smoke["predict"] = _jsonable(model.predict(x))
            if sig.get("has_predict_proba"):
                smoke["predict_proba"] = _jsonable(model.predict_proba(x))
            smoke["ok"] = True
        except BaseException as exc:
            smoke["error"] = _describe(exc)
        timings["predict_ms"] = (time.perf_counter() - started) * 1000
    return {"ok": True, "signature": sig, "smoke": smoke, "timings": timings}


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    while len(args) >= 2 and args[0] == "--path":
        extra.append(args[1])
        del args[:2]
    if len(args) != 1:
        usage = "usage: python -m kubeserve_runtime.trial [--path DIR]... MODEL_PATH"
        print(usage, file=sys.stderr)
        return 2
    sys.path[:0] = extra
    # Keep the real stdout for the result and point fd 1 at stderr for whatever the model
    # (or a command it starts) prints.
    sys.stdout.flush()
    result_fd = os.dup(1)
    os.dup2(2, 1)
    try:
        result = run(args[0])
    finally:
        sys.stdout.flush()
    with os.fdopen(result_fd, "w") as out:
        out.write(json.dumps(result, default=str) + "\n")
    return 0 if result.get("ok") else 1


if __name__ == "__main__":
    raise SystemExit(main())
