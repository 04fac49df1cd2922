"""Third-party clients, unchanged, against real runtimes through a real gateway at
`/api/v1/predict/{deployment_id}`: Triton's `tritonclient` (HTTP, V2 with binary tensors, the
model repository index, numeric versions) and KServe's own `InferenceRESTClient` (V1: server
live, model ready, `:predict`, `:explain`; V2: infer on an skl2onnx graph by its native tensor
names). The deployer is a fake answering the route lookup; auth is the echo's FakeAuth."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig
from kubeserve_common.testing.servers import serve_app
from kubeserve_gateway.testing import FakeDeployer
from kubeserve_runtime import create_app, load_model
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from tritonclient import http as triton
from tritonclient.utils import InferenceServerException


@pytest.fixture(scope="module")
def iris() -> tuple[np.ndarray, np.ndarray]:
    x, y = load_iris(return_X_y=True)
    return x, y


@pytest.fixture(scope="module")
def pipeline(iris: tuple[np.ndarray, np.ndarray]) -> Any:
    x, y = iris
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(x, y)


@pytest.fixture(scope="module")
def onnx_model(tmp_path_factory: pytest.TempPathFactory, pipeline: Any) -> Any:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    graph = convert_sklearn(
        pipeline,
        initial_types=[("X", FloatTensorType([None, 4]))],
        options={id(pipeline.steps[-1][1]): {"zipmap": False}},
    )
    path = Path(tmp_path_factory.mktemp("onnx")) / "model.onnx"
    path.write_bytes(graph.SerializeToString())
    return load_model(path)


@pytest.fixture
def deployer() -> Iterator[tuple[FakeDeployer, str]]:
    fake = FakeDeployer()
    with serve_app(fake.app) as url:
        yield fake, url


@pytest.fixture(scope="module")
def runtimes(pipeline: Any, onnx_model: Any) -> Iterator[dict[str, str]]:
    """Real runtimes: the sklearn pipeline as `iris` (version v1), the ONNX graph as `onnx`."""
    with (
        serve_app(create_app(pipeline, "iris", "v1")) as iris_url,
        serve_app(create_app(onnx_model, "onnx", "v3")) as onnx_url,
    ):
        yield {"iris": iris_url, "onnx": onnx_url}


def _triton(gateway: str, deployment: str) -> triton.InferenceServerClient:
    # tritonclient takes host:port/path and puts every v2/... route below the path.
    return triton.InferenceServerClient(
        url=f"{gateway.removeprefix('http://')}/api/v1/predict/{deployment}"
    )


async def test_tritonclient_through_the_gateway(
    make_stack: Any, deployer: tuple[FakeDeployer, str], runtimes: dict[str, str], iris: Any,
    pipeline: Any,
) -> None:  # fmt: skip
    fake, url = deployer
    x, _ = iris
    rows = x[[0, 75, 120]].astype(np.float32)
    async with make_stack(deployer_url=url) as stack:
        headers = stack.bearer()
        client = _triton(stack.url, fake.add(stack.user_id, [runtimes["iris"]]))
        assert client.is_server_live(headers=headers) and client.is_server_ready(headers=headers)
        assert "model_repository" in client.get_server_metadata(headers=headers)["extensions"]
        index = client.get_model_repository_index(headers=headers)
        assert index == [{"name": "iris", "version": "v1", "state": "READY"}]
        # Triton-style numeric versions name the vN tags.
        assert client.is_model_ready("iris", "1", headers=headers)
        meta = client.get_model_metadata("iris", "1", headers=headers)
        assert meta["versions"] == ["v1"] and meta["inputs"][0]["shape"] == [-1, 4]
        assert [o["datatype"] for o in meta["outputs"]] == ["INT64", "FP64"]

        inputs = [triton.InferInput("input-0", [3, 4], "FP32")]
        inputs[0].set_data_from_numpy(rows)  # binary tensor extension
        result = client.infer("iris", inputs, model_version="1", headers=headers)
        assert result.as_numpy("predict").tolist() == pipeline.predict(rows).tolist()
        assert np.allclose(result.as_numpy("predict_proba"), pipeline.predict_proba(rows))

        with pytest.raises(InferenceServerException, match="does not exist"):
            client.get_model_metadata("iris", "2", headers=headers)
        with pytest.raises(InferenceServerException, match="read-only"):
            client.unload_model("iris", headers=headers)

        # The ONNX graph keeps its tensor names and single-precision outputs end to end.
        onnx = _triton(stack.url, fake.add(stack.user_id, [runtimes["onnx"]]))
        meta = onnx.get_model_metadata("onnx", headers=headers)
        assert meta["inputs"] == [{"name": "X", "datatype": "FP32", "shape": [-1, 4]}]
        assert [(o["name"], o["datatype"]) for o in meta["outputs"]] == [
            ("label", "INT64"),
            ("probabilities", "FP32"),
        ]
        inputs = [triton.InferInput("X", [3, 4], "FP32")]
        inputs[0].set_data_from_numpy(rows)
        wanted = [triton.InferRequestedOutput("probabilities")]
        result = onnx.infer("onnx", inputs, outputs=wanted, headers=headers)
        proba = result.as_numpy("probabilities")
        assert proba.dtype == np.float32 and proba.shape == (3, 3)
        assert np.allclose(proba, pipeline.predict_proba(rows), atol=1e-5)


async def test_kserve_client_v1_through_the_gateway(
    make_stack: Any, deployer: tuple[FakeDeployer, str], runtimes: dict[str, str], iris: Any,
    pipeline: Any,
) -> None:  # fmt: skip
    fake, url = deployer
    x, _ = iris
    async with make_stack(deployer_url=url) as stack:
        base = f"{stack.url}/api/v1/predict/{fake.add(stack.user_id, [runtimes['iris']])}"
        headers = stack.bearer()
        client = InferenceRESTClient(RESTConfig(protocol="v1", timeout=30))
        try:
            assert await client.is_server_live(base, headers=headers) is True
            assert await client.is_model_ready(base, "iris", headers=headers) is True
            body = {"instances": x[[0, 120]].tolist()}
            result = await client.infer(base, body, model_name="iris", headers=headers)
            assert result["predictions"] == pipeline.predict(x[[0, 120]]).tolist()

            explained = await client.explain(base, "iris", body, headers=headers)
            first = explained["explanations"][0]
            assert first["prediction"] == 0
            assert set(first["contributions"]) == {"x0", "x1", "x2", "x3"}
            # The contributions and the intercept add up to the predicted class's logit.
            z = pipeline[:-1].transform(x[[0]])
            logit = pipeline[-1].decision_function(z)[0][0]
            assert sum(first["contributions"].values()) + first["intercept"] == pytest.approx(logit)

            with pytest.raises(httpx.HTTPStatusError) as unknown:
                await client.infer(base, body, model_name="nope", headers=headers)
            assert unknown.value.response.status_code == 404
        finally:
            await client.close()


async def test_kserve_client_v2_through_the_gateway(
    make_stack: Any, deployer: tuple[FakeDeployer, str], runtimes: dict[str, str], iris: Any,
    pipeline: Any,
) -> None:  # fmt: skip
    fake, url = deployer
    x, _ = iris
    rows = x[[0, 75]].astype(np.float32)
    async with make_stack(deployer_url=url) as stack:
        base = f"{stack.url}/api/v1/predict/{fake.add(stack.user_id, [runtimes['onnx']])}"
        headers = stack.bearer()
        client = InferenceRESTClient(RESTConfig(protocol="v2", timeout=30))
        try:
            assert await client.is_server_live(base, headers=headers) is True
            assert await client.is_server_ready(base, headers=headers) is True
            assert await client.is_model_ready(base, "onnx", headers=headers) is True
            tensor = InferInput("X", [2, 4], "FP32")
            tensor.set_data_from_numpy(rows, binary_data=False)
            request = InferRequest(model_name="onnx", infer_inputs=[tensor])
            response = await client.infer(base, request, model_name="onnx", headers=headers)
            outputs = {o.name: o for o in response.outputs}
            assert set(outputs) == {"label", "probabilities"}
            assert outputs["probabilities"].datatype == "FP32"
            assert outputs["label"].as_numpy().tolist() == pipeline.predict(rows).tolist()
        finally:
            await client.close()
