"""Loading artifacts (files, directories, S3) and extracting their signature."""

from __future__ import annotations

import pickle
import sys

import httpx
import joblib
import numpy as np
import pytest
from kubeserve_runtime import create_app
from kubeserve_runtime.loaders import MissingDependencyError, ModelLoadError, load_model, signature


def test_joblib_pickle_compressed_and_directory(tmp_path, iris_pipeline, iris) -> None:
    x, _ = iris
    joblib.dump(iris_pipeline, tmp_path / "a.joblib")
    joblib.dump(iris_pipeline, tmp_path / "b.bin", compress=3)
    (tmp_path / "c.pkl").write_bytes(pickle.dumps(iris_pipeline))
    art = tmp_path / "artifact"
    art.mkdir()
    joblib.dump(iris_pipeline, art / "model.joblib")
    (art / "requirements.txt").write_text("numpy\n")
    for source in ("a.joblib", "b.bin", "c.pkl", "artifact"):
        model = load_model(tmp_path / source)
        assert model.predict(x[:3]).tolist() == iris_pipeline.predict(x[:3]).tolist()


def test_signature_of_pipeline_frame_model_and_regressor(iris_pipeline, frame_model, iris) -> None:
    sig = signature(iris_pipeline)
    assert sig.n_features_in == 4 and sig.feature_names_in is None
    assert sig.classes == [0, 1, 2] and sig.has_predict_proba
    assert sig.outputs == ["predict", "predict_proba"]
    assert sig.model_type == "sklearn.Pipeline"

    sig = signature(frame_model).to_dict()
    assert sig["feature_names_in"] == ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    assert sig["classes"] == ["setosa", "versicolor", "virginica"]

    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = iris
    sig = signature(Ridge().fit(x, y))
    assert sig.classes is None and not sig.has_predict_proba and sig.outputs == ["predict"]
    # predict_proba hidden by available_if is reported as absent.
    assert not signature(make_pipeline(StandardScaler(), Ridge()).fit(x, y)).has_predict_proba


def test_load_errors_are_clear(tmp_path) -> None:
    with pytest.raises(ModelLoadError, match="not found"):
        load_model(tmp_path / "missing.joblib")
    (tmp_path / "empty.joblib").write_bytes(b"")
    with pytest.raises(ModelLoadError, match="empty"):
        load_model(tmp_path / "empty.joblib")
    (tmp_path / "junk.joblib").write_bytes(b"\x80\x04this is not a pickle")
    with pytest.raises(ModelLoadError, match=r"could not load junk\.joblib"):
        load_model(tmp_path / "junk.joblib")
    joblib.dump({"weights": [1, 2]}, tmp_path / "dict.joblib")
    with pytest.raises(ModelLoadError, match=r"\(dict\) has no predict"):
        load_model(tmp_path / "dict.joblib")
    (tmp_path / "notes.md").write_text("hello")
    with pytest.raises(ModelLoadError, match="unrecognised model format"):
        load_model(tmp_path / "notes.md")
    two = tmp_path / "two"
    two.mkdir()
    (two / "a.bin").write_bytes(b"x")
    (two / "b.bin").write_bytes(b"y")
    with pytest.raises(ModelLoadError, match="cannot tell which file"):
        load_model(two)


def test_missing_optional_framework_is_a_clear_error(tmp_path, monkeypatch) -> None:
    # None in sys.modules makes `import onnxruntime` fail, installed or not.
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    (tmp_path / "model.onnx").write_bytes(b"\x08\x07onnx")
    with pytest.raises(MissingDependencyError, match="needs the 'onnxruntime' package"):
        load_model(tmp_path)


def test_load_from_s3(tmp_path, monkeypatch, iris_pipeline, iris) -> None:
    boto3 = pytest.importorskip("boto3")
    from kubeserve_common.testing.servers import free_port
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    try:
        endpoint = f"http://127.0.0.1:{port}"
        for key, value in {
            "KUBESERVE_S3_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_REGION": "us-east-1",
        }.items():
            monkeypatch.setenv(key, value)
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
        s3.create_bucket(Bucket="models")
        joblib.dump(iris_pipeline, tmp_path / "model.joblib")
        s3.upload_file(str(tmp_path / "model.joblib"), "models", "models/u1/m1/v1/model.joblib")
        s3.put_object(Bucket="models", Key="models/u1/m1/v1/requirements.txt", Body=b"numpy\n")
        x, _ = iris
        expected = iris_pipeline.predict(x[:2]).tolist()
        # One object, and the whole artifact prefix.
        for i, uri in enumerate(
            ("s3://models/models/u1/m1/v1/model.joblib", "s3://models/models/u1/m1/v1")
        ):
            model = load_model(uri, cache_dir=tmp_path / f"cache{i}")
            assert model.predict(x[:2]).tolist() == expected
        with pytest.raises(ModelLoadError, match="nothing found"):
            load_model("s3://models/models/u1/m1/v9", cache_dir=tmp_path / "v9")
    finally:
        server.stop()


async def test_not_ready_until_loaded(tmp_path, iris_pipeline) -> None:
    joblib.dump(iris_pipeline, tmp_path / "model.joblib")
    app = create_app(str(tmp_path / "model.joblib"), "iris")
    # No lifespan has run: the model is not loaded, so the runtime is live but not ready.
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        assert (await client.get("/v2/health/live")).status_code == 200
        response = await client.get("/v2/health/ready")
        assert response.status_code == 503 and "error" in response.json()
        assert (await client.get("/v2/models/iris/ready")).status_code == 503
        body = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [1] * 4}]}
        response = await client.post("/v2/models/iris/infer", json=body)
        assert response.status_code == 503
        assert "not ready" in response.json()["error"]
    runtime = app.state.runtime
    await runtime.start()
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            response = await client.post("/predict", json={"instances": [[5.1, 3.5, 1.4, 0.2]]})
            assert response.json()["predictions"] == [0]
            assert np.asarray(response.json()["probabilities"]).shape == (1, 3)
    finally:
        await runtime.stop()
