"""The runtime's routes, one `APIRouter` per protocol: health and server metadata, Open
Inference Protocol V2 (with the read-only part of Triton's model repository extension),
KServe V1 and the simple `/predict`, and `/metrics`.

Prediction routes are plain Starlette routes (`add_route`): they read path parameters
themselves, which spares every request FastAPI's parameter solving. Every route finds the
served model in `request.app.state.runtime` (a `state.Runtime`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from fastapi import APIRouter
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import Response

from kubeserve_runtime import __version__, v1, v2
from kubeserve_runtime.explain import NotExplainable, explain
from kubeserve_runtime.http import HttpError, error_response, json_response, read_body
from kubeserve_runtime.model import InvalidInput, ModelFailed
from kubeserve_runtime.state import Runtime
from kubeserve_runtime.tensors import TensorError

log = logging.getLogger("kubeserve_runtime")

SERVER_NAME = "kubeserve-runtime"
# What `GET /v2` advertises; each name is implemented below.
EXTENSIONS = ["binary_tensor_data", "model_repository"]


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


async def timed(runtime: Runtime, call: Callable[[], Awaitable[Response]]) -> Response:
    """Every prediction request is counted and timed, whatever its outcome."""
    started = time.perf_counter()
    try:
        response = await call()
    except HttpError as exc:
        response = error_response(exc.status, exc.message)
    except (InvalidInput, TensorError) as exc:
        response = error_response(400, str(exc))
    except ModelFailed as exc:
        log.warning("model %s failed: %s", runtime.name, exc)
        response = error_response(500, str(exc))
    except Exception as exc:
        log.exception("prediction failed")
        response = error_response(500, f"internal error: {type(exc).__name__}: {exc}")
    runtime.metrics.observe(response.status_code, time.perf_counter() - started)
    return response


# -- health and server metadata -----------------------------------------------------------------

health = APIRouter()


@health.get("/v2/health/live")
async def live() -> Response:
    return json_response({"live": True})


@health.get("/v2/health/ready")
async def ready(request: Request) -> Response:
    if not _runtime(request).ready:
        return error_response(503, "model is not loaded yet")
    return json_response({"ready": True})


@health.get("/healthz")
async def healthz() -> Response:
    return json_response({"status": "ok"})


@health.get("/readyz")
async def readyz(request: Request) -> Response:
    if not _runtime(request).ready:
        return error_response(503, "model is not loaded yet")
    return json_response({"status": "ready"})


@health.get("/")
async def v1_server_live() -> Response:
    # KServe V1's server liveness is `GET /` answering {"status": "alive"}.
    return json_response({"status": "alive"})


# -- Open Inference Protocol V2 -----------------------------------------------------------------

oip_v2 = APIRouter()


@oip_v2.get("/v2")
async def server_metadata() -> Response:
    return json_response({"name": SERVER_NAME, "version": __version__, "extensions": EXTENSIONS})


def _metadata(request: Request, version: str | None) -> Response:
    try:
        adapter = _runtime(request).check_model(request.path_params["model_name"], version)
    except HttpError as exc:
        return error_response(exc.status, exc.message)
    return json_response(adapter.metadata())


def _model_ready(request: Request, version: str | None) -> Response:
    name = request.path_params["model_name"]
    try:
        _runtime(request).check_model(name, version)
    except HttpError as exc:
        return error_response(exc.status, exc.message)
    return json_response({"name": name, "ready": True})


@oip_v2.get("/v2/models/{model_name}")
async def model_metadata(request: Request, model_name: str) -> Response:
    return _metadata(request, None)


@oip_v2.get("/v2/models/{model_name}/versions/{model_version}")
async def model_version_metadata(request: Request, model_name: str, model_version: str) -> Response:
    return _metadata(request, model_version)


@oip_v2.get("/v2/models/{model_name}/ready")
async def model_is_ready(request: Request, model_name: str) -> Response:
    return _model_ready(request, None)


@oip_v2.get("/v2/models/{model_name}/versions/{model_version}/ready")
async def model_version_is_ready(request: Request, model_name: str, model_version: str) -> Response:
    return _model_ready(request, model_version)


async def _infer(request: Request, runtime: Runtime) -> Response:
    version = request.path_params.get("model_version")
    adapter = runtime.check_model(request.path_params["model_name"], version)
    assert runtime.runner is not None
    body = await read_body(request, runtime.config.max_request_bytes)
    payload, x, selected = v2.decode_infer_request(request.headers, body, adapter)
    result = await runtime.runner.run(x, frozenset(key for key, _ in selected))
    return v2.infer_response(adapter, payload, result, selected)


async def infer(request: Request) -> Response:
    runtime = _runtime(request)
    return await timed(runtime, lambda: _infer(request, runtime))


oip_v2.add_route("/v2/models/{model_name}/infer", infer, methods=["POST"])
oip_v2.add_route("/v2/models/{model_name}/versions/{model_version}/infer", infer, methods=["POST"])


# Triton's model repository extension, read-only: one model is served, loaded at start-up.
@oip_v2.post("/v2/repository/index")
async def repository_index(request: Request) -> Response:
    runtime = _runtime(request)
    state = "READY" if runtime.ready else "LOADING"
    return json_response([{"name": runtime.name, "version": runtime.version, "state": state}])


@oip_v2.post("/v2/repository/models/{model_name}/load")
async def repository_load(request: Request, model_name: str) -> Response:
    # Loading the served model again is a no-op success (it is loaded); nothing else exists.
    try:
        _runtime(request).check_model(model_name, None)
    except HttpError as exc:
        return error_response(exc.status, exc.message)
    return json_response({})


@oip_v2.post("/v2/repository/models/{model_name}/unload")
async def repository_unload(request: Request, model_name: str) -> Response:
    return error_response(
        403, "this server's model repository is read-only: scale the deployment to stop it"
    )


# -- KServe V1 and the simple /predict ----------------------------------------------------------

kserve_v1 = APIRouter()


@kserve_v1.get("/v1/models")
async def v1_models(request: Request) -> Response:
    return json_response({"models": [_runtime(request).name]})


@kserve_v1.get("/v1/models/{model_name}")
async def v1_model_ready(request: Request, model_name: str) -> Response:
    runtime = _runtime(request)
    if model_name != runtime.name:
        return error_response(404, f"Model with name {model_name} does not exist.")
    if not runtime.ready:
        return error_response(503, f"Model with name {model_name} is not ready.")
    return json_response({"name": model_name, "ready": True})


async def _predict(request: Request, runtime: Runtime) -> Response:
    adapter = runtime.check_model(request.path_params.get("model_name") or runtime.name, None)
    assert runtime.runner is not None
    body = await read_body(request, runtime.config.max_request_bytes)
    x = v1.decode_predict_request(body, adapter)
    result = await runtime.runner.run(x, v1.wanted_outputs(adapter))
    return json_response(v1.predict_body(result))


async def predict(request: Request) -> Response:
    runtime = _runtime(request)
    return await timed(runtime, lambda: _predict(request, runtime))


async def _explain(request: Request, runtime: Runtime) -> Response:
    adapter = runtime.check_model(request.path_params["model_name"], None)
    body = await read_body(request, runtime.config.max_request_bytes)
    x = v1.decode_predict_request(body, adapter)
    try:
        return json_response(await asyncio.to_thread(explain, adapter, x))
    except NotExplainable as exc:
        return error_response(501, str(exc))


async def explain_v1(request: Request) -> Response:
    runtime = _runtime(request)
    return await timed(runtime, lambda: _explain(request, runtime))


kserve_v1.add_route("/predict", predict, methods=["POST"])
# The replica's root answers as the public deployment root does at the gateway (GET: KServe
# V1's liveness above, POST: the simple predict), so the per-deployment Ingress can map
# /api/v1/predict/{id} to `/` for every method: ingress-nginx cannot route by method.
kserve_v1.add_route("/", predict, methods=["POST"])
kserve_v1.add_route("/v1/models/{model_name}:predict", predict, methods=["POST"])
kserve_v1.add_route("/v1/models/{model_name}:explain", explain_v1, methods=["POST"])


# -- metrics ------------------------------------------------------------------------------------

metrics = APIRouter()


@metrics.get("/metrics")
async def prometheus(request: Request) -> Response:
    registry = _runtime(request).metrics.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
