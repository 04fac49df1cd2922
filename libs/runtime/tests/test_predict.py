"""The simple /predict endpoint (KServe V1 shape) and the metrics it feeds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families

IRIS_FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def test_instances_return_predictions_and_probabilities(serve, iris_pipeline, iris) -> None:
    x, _ = iris
    rows = x[[0, 60, 120]]
    with serve(iris_pipeline, "iris") as client:
        response = client.post("/predict", json={"instances": rows.tolist()})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["predictions"] == iris_pipeline.predict(rows).tolist() == [0, 1, 2]
        assert np.allclose(body["probabilities"], iris_pipeline.predict_proba(rows))
        # The KServe V1 path works too.
        v1 = client.post("/v1/models/iris:predict", json={"instances": rows.tolist()})
        assert v1.json()["predictions"] == [0, 1, 2]


def test_the_root_is_liveness_for_get_and_the_simple_predict_for_post(
    serve, iris_pipeline, iris
) -> None:
    # What the per-deployment Ingress sends /api/v1/predict/{id} to, whatever the method.
    x, _ = iris
    with serve(iris_pipeline, "iris") as client:
        assert client.get("/").json() == {"status": "alive"}
        response = client.post("/", json={"instances": x[[0, 120]].tolist()})
        assert response.status_code == 200, response.text
        assert (
            response.json()
            == client.post("/predict", json={"instances": x[[0, 120]].tolist()}).json()
        )
        assert client.put("/", json={}).status_code == 405


def test_regressor_has_no_probabilities(serve, iris) -> None:
    from sklearn.linear_model import LinearRegression

    x, y = iris
    model = LinearRegression().fit(x, y)
    with serve(model, "reg") as client:
        body = client.post("/predict", json={"instances": x[:2].tolist()}).json()
        assert set(body) == {"predictions"}
        assert np.allclose(body["predictions"], model.predict(x[:2]))


def test_records_use_feature_names(serve, frame_model, iris) -> None:
    x, _ = iris
    frame = pd.DataFrame(x[[0, 100]], columns=IRIS_FEATURES)
    # Keys in another order than the model's columns: matched by name.
    records = [dict(reversed(list(row.items()))) for row in frame.to_dict("records")]
    with serve(frame_model, "flowers") as client:
        body = client.post("/predict", json={"records": records}).json()
        assert body["predictions"] == ["setosa", "virginica"]
        assert len(body["probabilities"][0]) == 3
        # instances of a feature-named model are taken in the model's column order.
        body = client.post("/predict", json={"instances": x[[0, 100]].tolist()}).json()
        assert body["predictions"] == ["setosa", "virginica"]

        bad = client.post("/predict", json={"records": [{"sepal_length": 1.0, "colour": "red"}]})
        assert bad.status_code == 400
        error = bad.json()["error"]
        assert "missing features: sepal_width, petal_length, petal_width" in error
        assert "unexpected features: colour" in error


def test_records_with_strings_for_a_pipeline(serve, mixed_model) -> None:
    with serve(mixed_model, "mixed") as client:
        records = [{"colour": "red", "size": 0.0}, {"colour": "blue", "size": 0.0}]
        assert client.post("/predict", json={"records": records}).json()["predictions"] == [1, 0]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"instances": [[1, 2, 3]]}, "expected 4 features, got 3"),
        ({"instances": [1, 2, 3, 4]}, "expected a 2-D input of shape [N, 4]"),
        ({"instances": [[1, 2, 3, 4], [1, 2]]}, "rows of equal length; got rows of 2, 4"),
        ({"instances": [[1, 2, 3, "x"]]}, "could not convert string to float: 'x'"),
        ({"instances": []}, "non-empty list"),
        ({"rows": [[1, 2, 3, 4]]}, "expected 'instances'"),
        ({"records": [[1, 2, 3, 4]]}, "records[0] must be an object"),
        ([1, 2], "expected a JSON object"),
    ],
)
def test_bad_input_is_400_saying_what_was_expected(serve, iris_pipeline, body, message) -> None:
    with serve(iris_pipeline, "iris") as client:
        response = client.post("/predict", json=body)
        assert response.status_code == 400
        assert message in response.json()["error"]


def test_body_size_limit_is_413(serve, iris_pipeline) -> None:
    with serve(iris_pipeline, "iris", max_request_bytes=1000) as client:
        response = client.post("/predict", json={"instances": [[1.0, 2.0, 3.0, 4.0]] * 100})
        assert response.status_code == 413
        assert "larger than 1000 bytes" in response.json()["error"]


def test_metrics_count_requests_by_status(serve, iris_pipeline, monkeypatch) -> None:
    monkeypatch.setenv("KUBESERVE_DEPLOYMENT_ID", "dep-42")
    monkeypatch.setenv("KUBESERVE_TENANT_ID", "user-7")
    with serve(iris_pipeline, "iris", "v7") as client:
        client.post("/predict", json={"instances": [[1, 2, 3, 4]]})
        client.post("/predict", json={"instances": [[1, 2, 3, 4]]})
        client.post("/predict", json={"instances": [[1, 2, 3]]})
        text = client.get("/metrics").text
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    base = {"deployment": "dep-42", "tenant": "user-7", "version": "v7"}

    def value(name: str, **extra: str) -> float:
        return samples[(name, tuple(sorted({**base, **extra}.items())))]

    assert value("kubeserve_prediction_duration_seconds_count", status="200") == 2
    assert value("kubeserve_prediction_duration_seconds_count", status="400") == 1
    assert value("kubeserve_prediction_duration_seconds_bucket", status="200", le="+Inf") == 2
    assert value("kubeserve_model_ready") == 1
    # CPU per replica, labelled with its tenant ("CPU per user" without a cluster).
    assert value("kubeserve_replica_cpu_seconds_total") > 0
    assert "process_cpu_seconds_total" in text


def test_text_pipeline_takes_strings_by_instances_and_bytes_tensors(serve) -> None:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    texts = ["great product", "loved it", "terrible", "awful, broke", "great value", "bad"]
    model = make_pipeline(TfidfVectorizer(), LogisticRegression()).fit(texts, [1, 1, 0, 0, 1, 0])
    with serve(model, "sentiment") as client:
        body = client.post("/predict", json={"instances": ["great", "awful"]}).json()
        assert body["predictions"] == model.predict(["great", "awful"]).tolist()
        response = client.post(
            "/v2/models/sentiment/infer",
            json={"inputs": [{"name": "text", "shape": [2], "datatype": "BYTES",
                              "data": ["great", "awful"]}]},
        )  # fmt: skip
        assert response.json()["outputs"][0]["data"] == body["predictions"]
