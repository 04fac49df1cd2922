"""Native XGBoost/LightGBM files and ONNX graphs, when those libraries are installed.

They are optional extras of kubeserve-runtime (xgboost, lightgbm, onnx); each test is skipped
when its library is absent (the loader's clear error for that case is tested in
test_loaders.py).
"""

from __future__ import annotations

import numpy as np
import pytest
from kubeserve_runtime.loaders import load_model, signature


def test_xgboost_native_json_and_ubj(tmp_path, iris, serve) -> None:
    xgb = pytest.importorskip("xgboost")
    x, y = iris
    clf = xgb.XGBClassifier(n_estimators=20, max_depth=3).fit(x, y)
    for name in ("model.json", "model.ubj"):
        clf.get_booster().save_model(str(tmp_path / name))
        model = load_model(tmp_path / name)
        assert model.predict(x).tolist() == clf.predict(x).tolist()
        assert np.allclose(model.predict_proba(x), clf.predict_proba(x), atol=1e-6)
        sig = signature(model)
        assert sig.n_features_in == 4 and sig.has_predict_proba
    binary = xgb.XGBClassifier(n_estimators=10).fit(x, (y == 2).astype(int))
    binary.get_booster().save_model(str(tmp_path / "binary.json"))
    model = load_model(tmp_path / "binary.json")
    assert model.predict(x).tolist() == binary.predict(x).tolist()
    assert model.predict_proba(x).shape == (150, 2)

    reg = xgb.XGBRegressor(n_estimators=10).fit(x, y.astype(float))
    reg.get_booster().save_model(str(tmp_path / "reg.json"))
    model = load_model(tmp_path / "reg.json")
    assert not signature(model).has_predict_proba
    assert np.allclose(model.predict(x), reg.predict(x), atol=1e-5)
    with serve(model, "xgb") as client:
        body = client.post("/predict", json={"instances": x[:2].tolist()}).json()
        assert set(body) == {"predictions"}
        assert np.allclose(body["predictions"], reg.predict(x[:2]), atol=1e-5)


def test_lightgbm_native_text_file(tmp_path, iris, serve) -> None:
    lgb = pytest.importorskip("lightgbm")
    x, y = iris
    clf = lgb.LGBMClassifier(n_estimators=20, verbose=-1).fit(x, y)
    clf.booster_.save_model(str(tmp_path / "model.txt"))
    model = load_model(tmp_path)
    assert model.predict(x).tolist() == clf.predict(x).tolist()
    assert np.allclose(model.predict_proba(x), clf.predict_proba(x))
    assert signature(model).n_features_in == 4
    with serve(model, "lgb") as client:
        response = client.post(
            "/v2/models/lgb/infer",
            json={"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64",
                              "data": x[100].tolist()}]},
        )  # fmt: skip
        outputs = {o["name"]: o for o in response.json()["outputs"]}
        assert outputs["predict"]["data"] == [2]
        assert outputs["predict_proba"]["shape"] == [1, 3]


@pytest.mark.parametrize("zipmap", [True, False])
def test_onnx_graph_from_a_sklearn_pipeline(tmp_path, iris, iris_pipeline, serve, zipmap) -> None:
    pytest.importorskip("onnxruntime")
    skl2onnx = pytest.importorskip("skl2onnx")
    from skl2onnx.common.data_types import FloatTensorType

    x, _ = iris
    onx = skl2onnx.convert_sklearn(
        iris_pipeline,
        initial_types=[("input", FloatTensorType([None, 4]))],
        options={id(iris_pipeline.steps[-1][1]): {"zipmap": zipmap}},
    )
    (tmp_path / "model.onnx").write_bytes(onx.SerializeToString())
    model = load_model(tmp_path / "model.onnx")
    rows = x.astype(np.float32)
    assert model.predict(rows).tolist() == iris_pipeline.predict(rows).tolist()
    assert np.allclose(model.predict_proba(rows), iris_pipeline.predict_proba(rows), atol=1e-5)
    sig = signature(model)
    assert sig.n_features_in == 4 and sig.has_predict_proba
    with serve(model, "onnx") as client:
        meta = client.get("/v2/models/onnx").json()
        assert meta["platform"] == "onnx"
        # The graph's own tensor names and types, not generic ones.
        label, proba = [o.name for o in onx.graph.output]
        assert meta["inputs"][0] == {"name": "input", "datatype": "FP32", "shape": [-1, 4]}
        assert meta["outputs"] == [
            {"name": label, "datatype": "INT64", "shape": [-1]},
            {"name": proba, "datatype": "FP32", "shape": [-1, -1]},
        ]
        body = client.post("/predict", json={"instances": x[[0, 120]].tolist()}).json()
        assert body["predictions"] == [0, 2]
        request = {
            "inputs": [
                {"name": "input", "shape": [2, 4], "datatype": "FP32",
                 "data": rows[[0, 120]].reshape(-1).tolist()}
            ],
        }  # fmt: skip
        outputs = client.post("/v2/models/onnx/infer", json=request).json()["outputs"]
        assert [(o["name"], o["datatype"]) for o in outputs] == [(label, "INT64"), (proba, "FP32")]
        assert outputs[0]["data"] == [0, 2]
        # An output asked for by its native name, or by the generic alias, is that output.
        for name in (proba, "predict_proba"):
            request["outputs"] = [{"name": name}]
            (only,) = client.post("/v2/models/onnx/infer", json=request).json()["outputs"]
            assert only["name"] == proba and only["shape"] == [2, 3]
