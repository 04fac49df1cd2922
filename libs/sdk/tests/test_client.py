"""The SDK against a real HTTP server on 127.0.0.1 that plays the gateway: retries of idempotent
calls on 503 honouring Retry-After (and none for a create), where credentials come from, numpy
and pandas inputs encoded as the API takes them and predictions decoded back, the JSON error
envelope as `APIError`, and the same behaviour from `Client` and `AsyncClient`."""

from __future__ import annotations

import inspect
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from kubeserve_common.testing.servers import serve_app
from kubeserve_sdk import APIError, AsyncClient, Client, RetryPolicy
from kubeserve_sdk import config as saved
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

DEPLOYMENT: dict[str, Any] = {
    "id": "6f1c3a52-3a51-4a6b-9c1e-7e2f1a0b9c11",
    "name": "iris",
    "owner_id": "0e0f4c55-8f43-4b6e-b7a4-4cb1b6a1b7e0",
    "model_id": "1b7b9d1e-5b0e-4e0e-9a51-1f6b2d3c4e5f",
    "version_id": "2c8c0e2f-6c1f-4f1f-8b62-2a7c3e4d5f60",
    "version_tag": "v1",
    "status": "Running",
    "revision": 1,
    "serving_revision": 1,
    "replicas": {"desired": 1, "ready": 1},
    "url": "http://gw/api/v1/predict/6f1c3a52-3a51-4a6b-9c1e-7e2f1a0b9c11",
    "failure_reason": None,
    "cold_start": None,
    "created_at": "2026-12-02T15:00:00Z",
    "updated_at": "2026-12-02T15:00:01Z",
    "events": [],
    "revisions": [],
    "replica_details": [],
    "a_field_from_a_newer_server": True,
}


class Gateway:
    """Answers 503 (with Retry-After) to the next `unavailable` calls, records every request."""

    def __init__(self) -> None:
        self.unavailable = 0
        self.status = 503
        self.retry_after: str | None = "1"
        self.seen: list[dict[str, Any]] = []

    def app(self) -> Starlette:
        async def handle(request: Request) -> JSONResponse:
            body = await request.body()
            self.seen.append(
                {
                    "method": request.method,
                    "path": request.url.path,
                    "auth": request.headers.get("authorization"),
                    "json": json.loads(body) if body else None,
                }
            )
            if self.unavailable:
                self.unavailable -= 1
                headers = {"Retry-After": self.retry_after} if self.retry_after else {}
                error = {"code": "database_unavailable", "message": "the database is away"}
                return JSONResponse({"error": error}, status_code=self.status, headers=headers)
            path = request.url.path
            if path == "/api/v1/auth/refresh":
                return JSONResponse({"access_token": "fresh", "refresh_token": "r2"})
            if request.headers.get("authorization") == "Bearer expired":
                error = {"code": "unauthorized", "message": "token expired"}
                return JSONResponse({"error": error}, status_code=401)
            if path.endswith("/missing"):
                error = {"code": "not_found", "message": "deployment missing not found"}
                return JSONResponse({"error": error}, status_code=404)
            if path.startswith("/api/v1/predict/") and path.endswith("/infer"):
                return JSONResponse(
                    {
                        "model_name": "iris",
                        "outputs": [
                            {"name": "label", "shape": [2], "datatype": "INT64", "data": [0, 2]},
                            {
                                "name": "proba",
                                "shape": [2, 2],
                                "datatype": "FP32",
                                "data": [0.9, 0.1, 0.2, 0.8],
                            },
                        ],
                    }
                )
            if path.startswith("/api/v1/predict/"):
                return JSONResponse({"predictions": [0, 2]})
            if request.method == "POST":
                return JSONResponse(DEPLOYMENT, status_code=202)
            return JSONResponse(DEPLOYMENT)

        return Starlette(routes=[Route("/{path:path}", handle, methods=["GET", "POST"])])


@pytest.fixture
def gateway() -> Iterator[tuple[str, Gateway]]:
    gw = Gateway()
    with serve_app(gw.app()) as url:
        yield url, gw


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("KUBESERVE_URL", "KUBESERVE_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))


def test_reads_and_predictions_are_retried_on_503_after_retry_after(
    gateway: tuple[str, Gateway],
) -> None:
    url, gw = gateway
    waits: list[float] = []
    with Client(url, api_key="ks_test", sleep=waits.append) as client:
        gw.unavailable = 2
        deployment = client.get_deployment(DEPLOYMENT["id"])
        assert deployment.status == "Running" and deployment.replicas.ready == 1
        assert waits == [1.0, 1.0]  # Retry-After, not a guess
        gw.unavailable, gw.retry_after = 1, None
        assert client.predict(DEPLOYMENT["id"], [[5.1, 3.5, 1.4, 0.2]]) == {"predictions": [0, 2]}
        assert len(waits) == 3 and 0 < waits[-1] <= 0.5  # backoff when no Retry-After
        # A create is not idempotent: one attempt, and the 503 reaches the caller.
        gw.unavailable = 1
        before = len(gw.seen)
        with pytest.raises(APIError) as failed:
            client.deploy(DEPLOYMENT["version_id"])
        assert failed.value.status == 503 and failed.value.code == "database_unavailable"
        assert len(gw.seen) == before + 1
        # Rate limited on a read: the same, after Retry-After.
        gw.unavailable, gw.status, gw.retry_after = 1, 429, "2"
        assert client.get_deployment(DEPLOYMENT["id"]).name == "iris"
        assert waits[-1] == 2.0
        gw.status = 503
    # Retries are bounded: past them the 503 is raised.
    with Client(url, api_key="ks", retry=RetryPolicy(retries=2), sleep=waits.append) as client:
        gw.unavailable, gw.retry_after = 5, "1"
        with pytest.raises(APIError) as exhausted:
            client.get_deployment(DEPLOYMENT["id"])
        assert exhausted.value.status == 503
        assert gw.unavailable == 2  # 1 try + 2 retries


async def test_the_async_client_retries_alike(gateway: tuple[str, Gateway]) -> None:
    url, gw = gateway
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    async with AsyncClient(url, api_key="ks_test", sleep=sleep) as client:
        gw.unavailable = 1
        deployment = await client.get_deployment(DEPLOYMENT["id"])
        assert str(deployment.id) == DEPLOYMENT["id"] and waits == [1.0]
        assert deployment["replicas"] == {"desired": 1, "ready": 1}  # reads like the JSON
        with pytest.raises(APIError) as missing:
            await client.get_deployment("missing")
        assert missing.value.status == 404 and "missing" in missing.value.message
        outputs = await client.infer(DEPLOYMENT["id"], "iris", np.ones((2, 4)), as_numpy=True)
        assert outputs["proba"].dtype == np.float32 and outputs["proba"].shape == (2, 2)


def test_both_clients_have_the_same_methods() -> None:
    def public(client: object) -> dict[str, inspect.Signature]:
        return {
            name: inspect.signature(method)
            for name, method in inspect.getmembers(client, callable)
            if not name.startswith("_")
        }

    sync, aio = Client("http://127.0.0.1:9", api_key="k"), AsyncClient("http://127.0.0.1:9")
    assert public(sync).keys() == public(aio).keys()
    streams = {"iter_models", "logs"}  # Iterator / AsyncIterator
    for name in set(public(aio)) - streams:
        assert public(sync)[name] == public(aio)[name], name  # parameters, defaults, answer
        assert inspect.iscoroutinefunction(getattr(aio, name)), name
        assert not inspect.iscoroutinefunction(getattr(sync, name)), name
    assert public(sync)["deploy"].return_annotation == "m.DeploymentRead"
    for name in streams:
        assert public(sync)[name].parameters == public(aio)[name].parameters
    sync.close()


def test_credentials_come_from_arguments_then_environment_then_saved(
    gateway: tuple[str, Gateway], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, gw = gateway
    saved.save({"url": url, "access_token": "saved-token", "refresh_token": "r"})
    with Client(url) as client:
        client.get_deployment("x")
    assert gw.seen[-1]["auth"] == "Bearer saved-token"

    monkeypatch.setenv("KUBESERVE_URL", url)
    monkeypatch.setenv("KUBESERVE_API_KEY", "ks_from_env")
    with Client() as client:  # nothing passed: the environment wins over the saved tokens
        client.get_deployment("x")
    assert gw.seen[-1]["auth"] == "Bearer ks_from_env"

    with Client(api_key="ks_argument") as client:
        client.get_deployment("x")
    assert gw.seen[-1]["auth"] == "Bearer ks_argument"


def test_numpy_and_pandas_inputs(gateway: tuple[str, Gateway]) -> None:
    url, gw = gateway
    rows = np.array([[5.1, 3.5, 1.4, 0.2], [7.7, 3.0, 6.1, 2.3]])
    with Client(url, api_key="ks") as client:
        predictions = client.predict(DEPLOYMENT["id"], rows, as_numpy=True)
        assert isinstance(predictions, np.ndarray) and predictions.tolist() == [0, 2]
        assert gw.seen[-1]["json"] == {"instances": rows.tolist()}

        frame = pd.DataFrame(rows, columns=["sl", "sw", "pl", "pw"])
        client.predict(DEPLOYMENT["id"], frame)
        assert gw.seen[-1]["json"]["records"][1] == {"sl": 7.7, "sw": 3.0, "pl": 6.1, "pw": 2.3}

        client.infer(DEPLOYMENT["id"], "iris", rows.astype(np.float32), input_name="X")
        [tensor] = gw.seen[-1]["json"]["inputs"]
        assert tensor["name"] == "X" and tensor["datatype"] == "FP32"
        assert tensor["shape"] == [2, 4] and len(tensor["data"]) == 8

        with pytest.raises(TypeError, match="numpy array"):
            client.predict(DEPLOYMENT["id"], object())


async def test_an_expired_token_is_refreshed_once_and_saved_back(
    gateway: tuple[str, Gateway],
) -> None:
    url, gw = gateway
    saved.save({"url": url, "access_token": "expired", "refresh_token": "r1"})
    with Client(url) as client:
        assert client.get_deployment("x").name == "iris"
    assert [s["auth"] for s in gw.seen] == ["Bearer expired", None, "Bearer fresh"]
    assert gw.seen[1]["json"] == {"refresh_token": "r1"}
    assert saved.load()["access_token"] == "fresh" and saved.load()["refresh_token"] == "r2"

    saved.save({"url": url, "access_token": "expired", "refresh_token": "r1"})
    async with AsyncClient(url) as aclient:
        assert (await aclient.get_deployment("x")).name == "iris"
    assert saved.load()["access_token"] == "fresh"
    assert [s["auth"] for s in gw.seen[3:]] == ["Bearer expired", None, "Bearer fresh"]


def test_an_empty_key_scope_is_sent_not_widened_to_every_deployment(
    gateway: tuple[str, Gateway],
) -> None:
    url, gw = gateway
    with Client(url, api_key="ks") as client:
        # The stand-in answers every POST with a deployment: only the request counts here.
        with pytest.raises(ValidationError):
            client.create_api_key("ci", deployment_ids=[], expires_in_days=0)
    assert gw.seen[-1]["json"] == {"name": "ci", "deployment_ids": [], "expires_in_days": 0}
