"""A request built by a third-party OIP client (Triton's HTTP client) works unchanged."""

from __future__ import annotations

import numpy as np
import pytest

# tritonclient is a test dependency (kubeserve-runtime[test]); it speaks the binary tensor
# extension by default, which is the point of this test.
httpclient = pytest.importorskip("tritonclient.http")
from tritonclient.utils import InferenceServerException  # noqa: E402


def _client(base_url: str) -> httpclient.InferenceServerClient:
    return httpclient.InferenceServerClient(url=base_url.removeprefix("http://"))


def test_tritonclient_infer_binary_and_json(serve, iris_pipeline, iris) -> None:
    x, _ = iris
    rows = x[[0, 75]].astype(np.float32)
    with serve(iris_pipeline, "iris", "v2") as http:
        client = _client(str(http.base_url))
        assert client.is_server_live() and client.is_server_ready()
        assert client.is_model_ready("iris")
        meta = client.get_model_metadata("iris")
        assert meta["inputs"][0]["shape"] == [-1, 4]

        inputs = [httpclient.InferInput("input-0", [2, 4], "FP32")]
        inputs[0].set_data_from_numpy(rows)  # binary by default
        result = client.infer("iris", inputs)
        assert result.as_numpy("predict").tolist() == iris_pipeline.predict(rows).tolist()
        assert np.allclose(result.as_numpy("predict_proba"), iris_pipeline.predict_proba(rows))
        assert result.get_response()["model_version"] == "v2"

        # JSON tensors, a chosen output, a version in the path.
        inputs = [httpclient.InferInput("input-0", [2, 4], "FP32")]
        inputs[0].set_data_from_numpy(rows, binary_data=False)
        outputs = [httpclient.InferRequestedOutput("predict_proba", binary_data=False)]
        result = client.infer("iris", inputs, model_version="v2", outputs=outputs)
        assert result.as_numpy("predict_proba").shape == (2, 3)
        assert result.as_numpy("predict") is None


def test_tritonclient_sees_errors(serve, iris_pipeline) -> None:
    with serve(iris_pipeline, "iris") as http:
        client = _client(str(http.base_url))
        inputs = [httpclient.InferInput("input-0", [1, 3], "FP32")]
        inputs[0].set_data_from_numpy(np.ones((1, 3), dtype=np.float32))
        with pytest.raises(InferenceServerException, match="expected 4 features, got 3"):
            client.infer("iris", inputs)
        with pytest.raises(InferenceServerException, match="does not exist"):
            client.infer("nope", inputs)


def test_tritonclient_bytes_tensor(serve, mixed_model) -> None:
    with serve(mixed_model, "mixed") as http:
        client = _client(str(http.base_url))
        colour = httpclient.InferInput("colour", [2], "BYTES")
        colour.set_data_from_numpy(np.array([b"red", b"blue"], dtype=object))
        size = httpclient.InferInput("size", [2], "FP64")
        size.set_data_from_numpy(np.array([0.0, 0.0]))
        result = client.infer("mixed", [colour, size], parameters={"content_type": "pd"})
        assert result.as_numpy("predict").tolist() == [1, 0]
