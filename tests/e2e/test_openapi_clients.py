"""On the embedded platform: the public OpenAPI document is valid (openapi-spec-validator),
lists the prediction routes and documents errors as the envelope the API really sends; a client
generated from it by openapi-python-client makes a real prediction; the SDK's models are what
the document generates; `Client()` and `AsyncClient()` predict with only `KUBESERVE_URL` and
`KUBESERVE_API_KEY` set."""

from __future__ import annotations

import importlib
import importlib.util
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import joblib
import jsonschema
import numpy as np
import pytest
from kubeserve_sdk import AsyncClient, Client
from openapi_spec_validator import validate
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from tests.e2e.platform import Platform, embedded

ROOT = Path(__file__).resolve().parents[2]
ROWS = [[5.1, 3.5, 1.4, 0.2], [7.7, 3.0, 6.1, 2.3]]


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The platform with one Running iris deployment and an API key for it."""
    tmp = tmp_path_factory.mktemp("openapi")
    model_file = tmp / "iris.joblib"
    X, y = load_iris(return_X_y=True)
    joblib.dump(LogisticRegression(max_iter=500).fit(X, y), model_file)
    with embedded(tmp / "home") as platform:
        client = Client(platform.url, api_key="unused")
        client.credentials.api_key = None
        client.register("openapi@example.com", "an openapi passphrase 1")
        client.login("openapi@example.com", "an openapi passphrase 1")
        model = client.create_model("iris")
        version = client.push(str(model.id), model_file)
        assert client.wait_for_version(str(model.id), str(version.id)).status == "Ready"
        deployment = client.wait_for_deployment(str(client.deploy(str(version.id)).id))
        assert deployment.status == "Running"
        key = client.create_api_key("sdk").key
        yield {
            "platform": platform,
            "deployment": str(deployment.id),
            "key": key,
            "token": client.credentials.access_token,
            "tmp": tmp,
        }
        client.close()


def _document(platform: Platform) -> dict[str, Any]:
    response = httpx.get(f"{platform.url}/api/v1/openapi.json", timeout=30)
    assert response.status_code == 200
    doc: dict[str, Any] = response.json()
    assert "x-kubeserve-unavailable" not in doc
    return doc


def test_the_document_is_valid_and_documents_predictions_and_errors(
    running: dict[str, Any],
) -> None:
    platform: Platform = running["platform"]
    doc = _document(platform)
    validate(doc)  # raises on an invalid OpenAPI 3.1 document
    paths = doc["paths"]
    for path in (
        "/api/v1/predict/{deployment_id}",
        "/api/v1/predict/{deployment_id}/v1/models/{model_name}:predict",
        "/api/v1/predict/{deployment_id}/v2/models/{model_name}/infer",
        "/api/v1/predict/{deployment_id}/v2/models/{model_name}",
        "/api/v1/deployments/{deployment_id}/logs",
        "/api/v1/cold-start",
    ):
        assert path in paths, path
    # Named by a query parameter: an unknown or another tenant's version is a documented 404.
    assert "404" in paths["/api/v1/cold-start"]["get"]["responses"]
    infer = paths["/api/v1/predict/{deployment_id}/v2/models/{model_name}/infer"]["post"]
    assert infer["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/InferRequest"
    }
    create = paths["/api/v1/deployments"]["post"]["responses"]
    assert {"401", "403", "409", "422", "429", "503"} <= set(create)
    # The documented 422 is the body the API really answers with.
    envelope = doc["components"]["schemas"]["ErrorEnvelope"]
    bad = httpx.post(
        f"{platform.url}/api/v1/deployments",
        json={"version_id": "not-a-uuid"},
        headers={"Authorization": f"Bearer {running['token']}"},
        timeout=30,
    )
    assert bad.status_code == 422
    jsonschema.validate(bad.json(), envelope)
    missing = httpx.get(
        f"{platform.url}/api/v1/deployments/00000000-0000-0000-0000-000000000000",
        headers={"Authorization": f"Bearer {running['token']}"},
        timeout=30,
    )
    assert missing.status_code == 404
    jsonschema.validate(missing.json(), envelope)


def _documented_schema(doc: dict[str, Any], template: str, method: str, status: int) -> Any:
    """The schema the document gives `method template` answering `status` (which it must list),
    as a JSON Schema resolving the document's `#/components/...` references."""
    answers = doc["paths"][template][method]["responses"]
    assert str(status) in answers, f"{method} {template} answered an undocumented {status}"
    answer = answers[str(status)]
    if "$ref" in answer:
        answer = doc["components"]["responses"][answer["$ref"].rsplit("/", 1)[1]]
    return {**answer["content"]["application/json"]["schema"], "components": doc["components"]}


def test_the_runtime_routes_answer_what_the_document_says(running: dict[str, Any]) -> None:
    """Each prediction route, called through the gateway, answers a status the document lists
    with a body of the documented schema: KServe V1 list/ready/:explain, Triton's repository
    routes, V2 health, and their errors (unknown model, read-only unload)."""
    platform: Platform = running["platform"]
    doc = _document(platform)
    dep = running["deployment"]
    headers = {"Authorization": f"Bearer {running['key']}"}
    name = httpx.get(
        f"{platform.url}/api/v1/deployments/{dep}", headers=headers, timeout=30
    ).json()["name"]
    base = "/api/v1/predict/{deployment_id}"
    calls: list[tuple[str, str, str, Any, int]] = [
        ("get", base, "", None, 200),
        ("get", f"{base}/v1/models", "", None, 200),
        ("get", f"{base}/v1/models/{{model_name}}", name, None, 200),
        ("get", f"{base}/v1/models/{{model_name}}", "absent", None, 404),
        ("post", f"{base}/v1/models/{{model_name}}:explain", name, {"instances": ROWS}, 200),
        ("post", f"{base}/v1/models/{{model_name}}:explain", "absent", {"instances": ROWS}, 404),
        ("post", f"{base}/v1/models/{{model_name}}:explain", name, {"instances": []}, 400),
        ("get", f"{base}/v2/health/live", "", None, 200),
        ("get", f"{base}/v2/health/ready", "", None, 200),
        ("get", f"{base}/v2/models/{{model_name}}/versions/{{model_version}}/ready", name,
         None, 200),
        ("post", f"{base}/v2/repository/index", "", {}, 200),
        ("post", f"{base}/v2/repository/models/{{model_name}}/load", name, None, 200),
        ("post", f"{base}/v2/repository/models/{{model_name}}/unload", name, None, 403),
    ]  # fmt: skip
    answers: dict[tuple[str, str, int], Any] = {}
    for method, template, model, body, status in calls:
        url = template.replace("{deployment_id}", dep).replace("{model_name}", model)
        url = url.replace("{model_version}", "1")
        r = httpx.request(
            method.upper(), platform.url + url, json=body, headers=headers, timeout=60
        )
        assert r.status_code == status, (method, url, r.status_code, r.text)
        jsonschema.validate(r.json(), _documented_schema(doc, template, method, status))
        answers[(method, template, status)] = r.json()
    assert answers[("get", f"{base}/v1/models", 200)] == {"models": [name]}
    explained = answers[("post", f"{base}/v1/models/{{model_name}}:explain", 200)]
    assert [row["prediction"] for row in explained["explanations"]] == [0, 2]
    assert [row["name"] for row in answers[("post", f"{base}/v2/repository/index", 200)]] == [
        name
    ]


def test_the_sdk_models_are_what_the_document_generates(running: dict[str, Any]) -> None:
    spec = importlib.util.spec_from_file_location(
        "generate_sdk_models", ROOT / "scripts/generate_sdk_models.py"
    )
    assert spec is not None and spec.loader is not None
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    live = _document(running["platform"])
    expected = generator.generate(live)
    committed = (ROOT / "libs/sdk/src/kubeserve_sdk/models.py").read_text()
    assert committed == expected, "the SDK's models drifted: run `make sdk-models` and commit"
    # `make sdk-models` builds the document in-process: it must be the one the platform serves.
    built = subprocess.run(
        [sys.executable, str(ROOT / "scripts/generate_sdk_models.py"), "--document"],
        capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    assert json.loads(built.stdout) == live


def test_a_generated_client_makes_a_real_prediction(running: dict[str, Any]) -> None:
    platform: Platform = running["platform"]
    out = running["tmp"] / "generated"
    out.mkdir()
    source = out / "openapi.json"
    source.write_text(httpx.get(f"{platform.url}/api/v1/openapi.json", timeout=30).text)
    done = subprocess.run(
        [str(Path(sys.executable).parent / "openapi-python-client"), "generate",
         "--path", str(source), "--meta", "none"],
        cwd=out, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    sys.path.insert(0, str(out))
    try:
        package = importlib.import_module("kube_serve_api_client")
        predict = importlib.import_module("kube_serve_api_client.api.predictions.predict")
        models = importlib.import_module("kube_serve_api_client.models")
        client = package.AuthenticatedClient(base_url=platform.url, token=running["key"])
        with client as c:
            answer = predict.sync(
                deployment_id=running["deployment"],
                client=c,
                body=models.PredictRequest(instances=ROWS),
            )
            assert isinstance(answer, models.PredictResponse)
            assert answer.predictions == [0, 2]
            # An error is parsed as the documented envelope, not mis-read.
            other = predict.sync(
                deployment_id="00000000-0000-0000-0000-000000000000",
                client=c,
                body=models.PredictRequest(instances=ROWS),
            )
            assert isinstance(other, models.ErrorEnvelope)
            assert other.error.code == "not_found"
    finally:
        sys.path.remove(str(out))


async def test_sdk_clients_from_the_environment_alone(
    running: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))  # no saved credentials
    monkeypatch.setenv("KUBESERVE_URL", running["platform"].url)
    monkeypatch.setenv("KUBESERVE_API_KEY", running["key"])
    dep = running["deployment"]
    with Client() as client:
        assert client.predict(dep, {"instances": ROWS})["predictions"] == [0, 2]
        labels = client.predict(dep, np.array(ROWS), as_numpy=True)
        assert isinstance(labels, np.ndarray) and labels.tolist() == [0, 2]
        assert [
            entry.line for entry in client.logs(dep, tail=50) if "startup complete" in entry.line
        ]
        # Following through the gateway: a line the replica writes later arrives live.
        [log_file] = (running["platform"].home / "runtime" / "logs" / dep).glob("*-0.log")

        def write_later() -> None:
            with log_file.open("a") as fh:
                fh.write("written later\n")

        timer = threading.Timer(1.0, write_later)
        timer.start()
        try:
            for entry in client.logs(dep, follow=True, tail=1):
                if entry.line == "written later":
                    break
        finally:
            timer.cancel()
    async with AsyncClient() as aclient:
        assert (await aclient.predict(dep, np.array(ROWS), as_numpy=True)).tolist() == [0, 2]
        deployment = await aclient.get_deployment(dep)
        name = deployment.name
        outputs = await aclient.infer(dep, name, np.array(ROWS, dtype=np.float64), as_numpy=True)
        assert any(a.shape[0] == 2 for a in outputs.values())
