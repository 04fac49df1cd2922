"""Open Inference Protocol V2 endpoints of a live runtime."""

from __future__ import annotations

import json
import struct

import numpy as np
import pandas as pd
import pytest

IRIS_FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def tensor(data: list, shape: list[int], datatype: str = "FP64", name: str = "input-0") -> dict:
    return {"name": name, "shape": shape, "datatype": datatype, "data": data}


def test_health_server_and_model_metadata(serve, iris_pipeline) -> None:
    with serve(iris_pipeline, "iris", "v3") as client:
        assert client.get("/v2/health/live").json() == {"live": True}
        assert client.get("/v2/health/ready").status_code == 200
        server = client.get("/v2").json()
        assert (
            server["name"] == "kubeserve-runtime" and "binary_tensor_data" in server["extensions"]
        )

        meta = client.get("/v2/models/iris").json()
        assert meta["name"] == "iris" and meta["versions"] == ["v3"]
        assert meta["inputs"] == [{"name": "input-0", "datatype": "FP64", "shape": [-1, 4]}]
        assert meta["outputs"] == [
            {"name": "predict", "datatype": "INT64", "shape": [-1]},
            {"name": "predict_proba", "datatype": "FP64", "shape": [-1, 3]},
        ]
        assert client.get("/v2/models/iris/versions/v3").json() == meta
        assert client.get("/v2/models/iris/ready").json() == {"name": "iris", "ready": True}
        assert client.get("/v2/models/iris/versions/v3/ready").status_code == 200


def test_unknown_model_or_version_is_404(serve, iris_pipeline) -> None:
    with serve(iris_pipeline, "iris") as client:
        for path in ("/v2/models/other", "/v2/models/other/ready", "/v2/models/iris/versions/v9"):
            response = client.get(path)
            assert response.status_code == 404
            assert set(response.json()) == {"error"}
        body = {"inputs": [tensor([[1, 2, 3, 4]], [1, 4])]}
        assert client.post("/v2/models/other/infer", json=body).status_code == 404
        response = client.post("/v2/models/iris/versions/v9/infer", json=body)
        assert response.status_code == 404 and "v9" in response.json()["error"]
        assert client.get("/no/such/route").json() == {"error": "Not Found"}


def test_infer_flat_and_nested_data_with_shape(serve, iris_pipeline, iris) -> None:
    x, _ = iris
    rows = x[[0, 60, 120]]
    expected = iris_pipeline.predict(rows).tolist()
    with serve(iris_pipeline, "iris") as client:
        nested = client.post(
            "/v2/models/iris/infer",
            json={"id": "req-1", "inputs": [tensor(rows.tolist(), [3, 4], "FP32")]},
        )
        assert nested.status_code == 200, nested.text
        body = nested.json()
        assert body["model_name"] == "iris" and body["model_version"] == "v1"
        assert body["id"] == "req-1"
        outputs = {o["name"]: o for o in body["outputs"]}
        assert outputs["predict"] == {
            "name": "predict",
            "shape": [3],
            "datatype": "INT64",
            "data": expected,
        }
        assert outputs["predict_proba"]["shape"] == [3, 3]
        assert outputs["predict_proba"]["datatype"] == "FP64"
        assert np.allclose(
            np.reshape(outputs["predict_proba"]["data"], (3, 3)),
            iris_pipeline.predict_proba(rows.astype(np.float32)),
        )

        flat = client.post(
            "/v2/models/iris/versions/v1/infer",
            json={"inputs": [tensor(rows.reshape(-1).tolist(), [3, 4])]},
        ).json()
        assert flat["id"]  # generated when the client sends none
        assert flat["outputs"][0]["data"] == expected


def test_outputs_selection(serve, iris_pipeline, iris) -> None:
    x, _ = iris
    with serve(iris_pipeline, "iris") as client:
        body = {"inputs": [tensor(x[:2].tolist(), [2, 4])], "outputs": [{"name": "predict_proba"}]}
        response = client.post("/v2/models/iris/infer", json=body).json()
        assert [o["name"] for o in response["outputs"]] == ["predict_proba"]

        body["outputs"] = [{"name": "logits"}]
        bad = client.post("/v2/models/iris/infer", json=body)
        assert bad.status_code == 400
        assert "predict, predict_proba" in bad.json()["error"]


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ([tensor([1.0, 2.0, 3.0], [1, 3])], "expected 4 features, got 3"),
        ([tensor([1.0, 2.0, 3.0, 4.0], [4])], "expected a 2-D input of shape [N, 4]"),
        ([tensor([1.0, 2.0, 3.0], [1, 4])], "shape [1, 4] needs 4 values, got 3"),
        ([tensor(["a", "b", "c", "d"], [1, 4], "FP32")], "datatype FP32 expects numbers"),
        ([tensor([1, 2.5, 3, 4], [1, 4], "INT64")], "datatype INT64 expects integers, got 2.5"),
        ([tensor([1, 2, 3, 4], [1, 4], "FP128")], "unsupported datatype 'FP128'"),
        ([tensor([[1, 2], [3]], [2, 2])], "ragged"),
        ([{"name": "input-0", "datatype": "FP32", "data": [1]}], "'shape' must be a list"),
        ([], "non-empty 'inputs'"),
    ],
)
def test_bad_requests_are_400_saying_what_was_expected(
    serve, iris_pipeline, inputs, message
) -> None:
    with serve(iris_pipeline, "iris") as client:
        response = client.post("/v2/models/iris/infer", json={"inputs": inputs})
        assert response.status_code == 400
        assert message in response.json()["error"]


def test_invalid_json_is_400(serve, iris_pipeline) -> None:
    with serve(iris_pipeline, "iris") as client:
        response = client.post("/v2/models/iris/infer", content=b"{not json")
        assert response.status_code == 400
        assert "not valid JSON" in response.json()["error"]
        deep = client.post("/predict", content=b"[" * 100_000 + b"]" * 100_000)
        assert deep.status_code == 400


def test_content_type_pd_uses_feature_names(serve, frame_model, iris) -> None:
    x, _ = iris
    rows = x[[0, 100]]
    expected = frame_model.predict(pd.DataFrame(rows, columns=IRIS_FEATURES)).tolist()
    # Columns in a different order than the model's: they are matched by name.
    inputs = [
        tensor(rows[:, i].tolist(), [2], "FP64", name)
        for i, name in reversed(list(enumerate(IRIS_FEATURES)))
    ]
    with serve(frame_model, "flowers") as client:
        response = client.post(
            "/v2/models/flowers/infer",
            json={"parameters": {"content_type": "pd"}, "inputs": inputs},
        )
        assert response.status_code == 200, response.text
        outputs = {o["name"]: o for o in response.json()["outputs"]}
        # String classes come back as BYTES.
        assert outputs["predict"]["datatype"] == "BYTES"
        assert outputs["predict"]["data"] == expected == ["setosa", "virginica"]

        missing = client.post(
            "/v2/models/flowers/infer",
            json={"parameters": {"content_type": "pd"}, "inputs": inputs[:3]},
        )
        assert missing.status_code == 400
        assert "missing features: sepal_length" in missing.json()["error"]


def test_bytes_tensors_feed_a_string_column(serve, mixed_model) -> None:
    frame = pd.DataFrame({"colour": ["red", "blue", "green"], "size": [0.0, 2.0, 0.0]})
    expected = mixed_model.predict(frame).tolist()
    inputs = [
        tensor(["red", "blue", "green"], [3], "BYTES", "colour"),
        tensor([0.0, 2.0, 0.0], [3, 1], "FP32", "size"),
    ]
    with serve(mixed_model, "mixed") as client:
        response = client.post("/v2/models/mixed/infer", json={"inputs": inputs})
        assert response.status_code == 200, response.text
        assert response.json()["outputs"][0]["data"] == expected

        bad = [tensor([1, 2, 3], [3], "BYTES", "colour"), inputs[1]]
        response = client.post("/v2/models/mixed/infer", json={"inputs": bad})
        assert response.status_code == 400
        assert "BYTES data must be strings" in response.json()["error"]


def test_binary_tensor_extension(serve, iris_pipeline, iris) -> None:
    x, _ = iris
    rows = x[:3].astype(np.float32)
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "input-0",
                    "shape": [3, 4],
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": rows.nbytes},
                }
            ],
            "parameters": {"binary_data_output": True},
        }
    ).encode()
    with serve(iris_pipeline, "iris") as client:
        response = client.post(
            "/v2/models/iris/infer",
            content=header + rows.tobytes(),
            headers={"Inference-Header-Content-Length": str(len(header))},
        )
        assert response.status_code == 200, response.text
        size = int(response.headers["Inference-Header-Content-Length"])
        meta = json.loads(response.content[:size])
        first = meta["outputs"][0]
        assert first["name"] == "predict" and first["datatype"] == "INT64"
        n = first["parameters"]["binary_data_size"]
        predicted = np.frombuffer(response.content[size : size + n], dtype="<i8")
        assert predicted.tolist() == iris_pipeline.predict(rows).tolist()


def test_binary_bytes_output(serve, frame_model, iris) -> None:
    x, _ = iris
    with serve(frame_model, "flowers") as client:
        response = client.post(
            "/v2/models/flowers/infer",
            json={
                "inputs": [tensor(x[:1].tolist(), [1, 4])],
                "outputs": [{"name": "predict", "parameters": {"binary_data": True}}],
            },
        )
        size = int(response.headers["Inference-Header-Content-Length"])
        raw = response.content[size:]
        (length,) = struct.unpack_from("<I", raw)
        assert raw[4 : 4 + length] == b"setosa"


def test_model_that_raises_is_500(serve) -> None:
    class Broken:
        n_features_in_ = 2

        def predict(self, x):
            raise RuntimeError("boom")

    with serve(Broken(), "broken") as client:
        response = client.post("/v2/models/broken/infer", json={"inputs": [tensor([1, 2], [1, 2])]})
        assert response.status_code == 500
        assert "boom" in response.json()["error"]
