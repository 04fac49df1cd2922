"""The runtime's HTTP app: Open Inference Protocol V2, the simple /predict, health, metrics.

`create_app` takes either a loaded model (the local backend's warm pool loads it after fork)
or a path/URI that is loaded once at startup; readiness turns true only after the load.
Errors follow KServe: `{"error": "..."}` with 400 (bad input), 404 (unknown model or
version), 503 (not ready) and 500 (the model raised).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
import uuid
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException

from kubeserve_runtime import __version__
from kubeserve_runtime.batching import ModelRunner
from kubeserve_runtime.loaders import load_model
from kubeserve_runtime.metrics import RuntimeMetrics
from kubeserve_runtime.model import (
    PREDICT,
    PREDICT_PROBA,
    InvalidInput,
    ModelAdapter,
    ModelFailed,
)
from kubeserve_runtime.tensors import TensorError, decode_tensor, encode_tensor

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger("kubeserve_runtime")

SERVER_NAME = "kubeserve-runtime"
JSON = "application/json"


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default  # unset or empty: the default


def _env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value else default  # unset or empty: the default


@dataclass
class RuntimeConfig:
    """Tunables, from arguments or `KUBESERVE_*` environment variables."""

    deployment_id: str = ""
    max_batch_size: int = 32
    max_batch_wait_ms: float = 0.0
    model_threads: int | None = None
    max_request_bytes: int = 64 * 1024 * 1024

    @classmethod
    def from_env(cls, **overrides: Any) -> RuntimeConfig:
        config = cls(
            deployment_id=os.environ.get("KUBESERVE_DEPLOYMENT_ID", ""),
            max_batch_size=_env_int("KUBESERVE_MAX_BATCH_SIZE", cls.max_batch_size),
            max_batch_wait_ms=_env_float("KUBESERVE_MAX_BATCH_WAIT_MS", cls.max_batch_wait_ms),
            model_threads=_env_int("KUBESERVE_MODEL_THREADS", 0) or None,
            max_request_bytes=_env_int("KUBESERVE_MAX_REQUEST_BYTES", cls.max_request_bytes),
        )
        for key, value in overrides.items():
            if value is not None:
                setattr(config, key, value)
        return config


class HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _json(payload: Any, status: int = 200) -> Response:
    return Response(json.dumps(payload, separators=(",", ":")), status, media_type=JSON)


def _error(status: int, message: str) -> Response:
    return _json({"error": message}, status)


class Runtime:
    """State of one served model: its adapter, runner and metrics."""

    def __init__(
        self, source: Any, name: str, version: str, config: RuntimeConfig, metrics: RuntimeMetrics
    ) -> None:
        self.source = source
        self.name = name
        self.version = version
        self.config = config
        self.metrics = metrics
        self.adapter: ModelAdapter | None = None
        self.runner: ModelRunner | None = None
        self.ready = False
        if not isinstance(source, str | os.PathLike):
            self._install(source)

    def _install(self, model: Any) -> None:
        self.adapter = ModelAdapter(model, self.name, self.version)
        self.runner = ModelRunner(
            self.adapter,
            max_batch_size=self.config.max_batch_size,
            max_wait_ms=self.config.max_batch_wait_ms,
            threads=self.config.model_threads,
        )
        self.runner.on_batch = self.metrics.observe_batch

    async def start(self) -> None:
        if self.adapter is None:
            started = time.perf_counter()
            model = await asyncio.to_thread(load_model, os.fspath(self.source))
            self._install(model)
            log.info(
                "model %s:%s loaded from %s in %.2fs",
                self.name,
                self.version,
                self.source,
                time.perf_counter() - started,
            )
        assert self.runner is not None
        await self.runner.start()
        self.ready = True
        self.metrics.set_ready(True)

    async def stop(self) -> None:
        self.ready = False
        self.metrics.set_ready(False)
        if self.runner is not None:
            await self.runner.stop()

    def check_model(self, name: str, version: str | None) -> ModelAdapter:
        if name != self.name:
            raise HttpError(404, f"Model with name {name} does not exist.")
        if version is not None and version != self.version:
            raise HttpError(404, f"Model {name} with version {version} does not exist.")
        if not self.ready or self.adapter is None:
            raise HttpError(503, f"Model with name {name} is not ready.")
        return self.adapter


async def _read_body(request: Request, limit: int) -> bytes:
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise HttpError(413, f"request body is larger than {limit} bytes")
    body = await request.body()
    if len(body) > limit:
        raise HttpError(413, f"request body is larger than {limit} bytes")
    encoding = request.headers.get("content-encoding", "").lower()
    if encoding in ("gzip", "deflate"):
        try:
            # Bounded decompression: a small gzip bomb must not exhaust memory.
            decomp = zlib.decompressobj(wbits=31 if encoding == "gzip" else 15)
            body = decomp.decompress(body, limit + 1)
            if len(body) > limit or decomp.unconsumed_tail:
                raise HttpError(413, f"decompressed request body is larger than {limit} bytes")
        except zlib.error as exc:
            raise HttpError(400, f"request body is not valid {encoding}: {exc}") from exc
    elif encoding not in ("", "identity"):
        raise HttpError(400, f"unsupported content-encoding {encoding!r}")
    return body


def _parse_json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise HttpError(400, f"request body is not valid JSON: {exc}") from exc
    except RecursionError as exc:
        raise HttpError(400, "request body is nested too deeply") from exc


# -- OIP V2 inference --------------------------------------------------------------------------


def _as_column(name: str, arr: np.ndarray) -> np.ndarray:
    if arr.ndim == 1:
        return arr
    if arr.ndim == 2 and arr.shape[1] == 1:
        return arr.reshape(-1)
    raise InvalidInput(
        f"input '{name}': with content_type pd each input is one column of shape [N] or "
        f"[N, 1], got {list(arr.shape)}"
    )


def _decode_infer_request(
    request_headers: Any, body: bytes, adapter: ModelAdapter
) -> tuple[dict[str, Any], Any, list[tuple[str, bool]]]:
    header_length = request_headers.get("inference-header-content-length")
    binary = b""
    if header_length is not None:
        try:
            n = int(header_length)
        except ValueError as exc:
            raise HttpError(400, "Inference-Header-Content-Length must be an integer") from exc
        if n < 0 or n > len(body):
            raise HttpError(400, "Inference-Header-Content-Length exceeds the body size")
        body, binary = body[:n], body[n:]
    payload = _parse_json(body)
    if not isinstance(payload, dict):
        raise HttpError(400, "the inference request must be a JSON object")
    inputs = payload.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise HttpError(400, "the inference request needs a non-empty 'inputs' list")
    parameters = payload.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise HttpError(400, "'parameters' must be an object")

    arrays: list[tuple[str, np.ndarray]] = []
    offset = 0
    for tensor in inputs:
        chunk = None
        params = tensor.get("parameters") if isinstance(tensor, dict) else None
        if isinstance(params, dict) and "binary_data_size" in params:
            size = params["binary_data_size"]
            if not isinstance(size, int) or size < 0 or offset + size > len(binary):
                raise HttpError(400, f"input {tensor.get('name')!r}: bad binary_data_size")
            chunk = binary[offset : offset + size]
            offset += size
        arrays.append((str(tensor.get("name")), decode_tensor(tensor, chunk)))

    content_type = parameters.get("content_type")
    x: np.ndarray | pd.DataFrame
    if content_type == "pd" or len(arrays) > 1:
        columns = {name: _as_column(name, arr) for name, arr in arrays}
        lengths = {len(col) for col in columns.values()}
        if len(lengths) > 1:
            raise InvalidInput(f"all columns need the same number of rows, got {sorted(lengths)}")
        x = adapter.prepare_columns(columns)
    else:
        x = adapter.prepare_matrix(arrays[0][1])

    binary_default = bool(parameters.get("binary_data_output", False))
    requested = payload.get("outputs")
    selected: list[tuple[str, bool]] = []
    if requested is None:
        selected = [(name, binary_default) for name in adapter.outputs]
    else:
        if not isinstance(requested, list):
            raise HttpError(400, "'outputs' must be a list of {name} objects")
        for out in requested:
            name = out.get("name") if isinstance(out, dict) else None
            if name not in adapter.outputs:
                raise HttpError(
                    400,
                    f"unknown output {name!r}; this model has: {', '.join(adapter.outputs)}",
                )
            out_params = out.get("parameters") or {}
            binary_flag = out_params.get("binary_data", binary_default)
            selected.append((name, bool(binary_flag)))
    return payload, x, selected


def _infer_response(
    adapter: ModelAdapter,
    payload: dict[str, Any],
    result: dict[str, np.ndarray],
    selected: list[tuple[str, bool]],
) -> Response:
    outputs = []
    chunks: list[bytes] = []
    for name, binary in selected:
        tensor, chunk = encode_tensor(name, result[name], binary)
        outputs.append(tensor)
        if chunk is not None:
            chunks.append(chunk)
    request_id = payload.get("id")
    body = {
        "model_name": adapter.name,
        "model_version": adapter.version,
        "id": request_id if isinstance(request_id, str) and request_id else uuid.uuid4().hex,
        "outputs": outputs,
    }
    if not chunks:
        return _json(body)
    header = json.dumps(body, separators=(",", ":")).encode()
    return Response(
        header + b"".join(chunks),
        200,
        media_type="application/octet-stream",
        headers={"Inference-Header-Content-Length": str(len(header))},
    )


# -- /predict (KServe V1 shape) ----------------------------------------------------------------


def _instances_array(instances: list[Any]) -> np.ndarray:
    try:
        return np.asarray(instances, dtype=np.float64)
    except (ValueError, TypeError):
        pass
    lengths = {len(row) for row in instances if isinstance(row, list)}
    if any(isinstance(row, list) for row in instances) and (
        len(lengths) > 1 or not all(isinstance(row, list) for row in instances)
    ):
        raise InvalidInput(
            "instances must be rows of equal length; got rows of "
            f"{', '.join(str(n) for n in sorted(lengths))} values"
        )
    # Not all numbers: keep the values as they are and let the model decide (a pipeline with
    # an encoder takes strings); numeric models reject them with a 400 below.
    return np.asarray(instances, dtype=object)


def _decode_predict_request(body: bytes, adapter: ModelAdapter) -> tuple[Any, bool]:
    payload = _parse_json(body)
    if not isinstance(payload, dict):
        raise HttpError(400, "expected a JSON object with 'instances' or 'records'")
    if "records" in payload:
        records = payload["records"]
        if not isinstance(records, list):
            raise InvalidInput("'records' must be a list of objects")
        return adapter.prepare_records(records), True
    instances = payload.get("instances", payload.get("inputs"))
    if instances is None:
        raise InvalidInput(
            "expected 'instances' (a list of rows of feature values) or 'records' "
            "(a list of objects keyed by feature name)"
        )
    if not isinstance(instances, list) or not instances:
        raise InvalidInput("'instances' must be a non-empty list of rows")
    if all(isinstance(row, dict) for row in instances):
        return adapter.prepare_records(instances), True
    return adapter.prepare_matrix(_instances_array(instances)), False


# -- the app -----------------------------------------------------------------------------------


def create_app(
    model: Any,
    name: str,
    version: str = "v1",
    *,
    deployment_id: str | None = None,
    max_batch_size: int | None = None,
    max_batch_wait_ms: float | None = None,
    model_threads: int | None = None,
    max_request_bytes: int | None = None,
) -> FastAPI:
    """Build the runtime app for `model` (a loaded estimator, a path or an s3:// URI).

    Unset options come from `KUBESERVE_*` environment variables, then defaults. Set
    `max_batch_size=1` to switch adaptive batching off.
    """
    config = RuntimeConfig.from_env(
        deployment_id=deployment_id,
        max_batch_size=max_batch_size,
        max_batch_wait_ms=max_batch_wait_ms,
        model_threads=model_threads,
        max_request_bytes=max_request_bytes,
    )
    metrics = RuntimeMetrics(config.deployment_id or name, version)
    source = Path(model) if isinstance(model, str) and not model.startswith("s3://") else model
    runtime = Runtime(source, name, version, config, metrics)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    app = FastAPI(
        title=SERVER_NAME,
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.runtime = runtime

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        return _error(exc.status_code, str(exc.detail))

    async def timed(call: Callable[[], Awaitable[Response]]) -> Response:
        # Every prediction request is counted and timed, whatever its outcome.
        started = time.perf_counter()
        try:
            response = await call()
        except HttpError as exc:
            response = _error(exc.status, exc.message)
        except (InvalidInput, TensorError) as exc:
            response = _error(400, str(exc))
        except ModelFailed as exc:
            log.warning("model %s failed: %s", runtime.name, exc)
            response = _error(500, str(exc))
        except Exception as exc:
            log.exception("prediction failed")
            response = _error(500, f"internal error: {type(exc).__name__}: {exc}")
        metrics.observe(response.status_code, (time.perf_counter() - started) * 1000.0)
        return response

    # health -----------------------------------------------------------------------------

    @app.get("/v2/health/live")
    async def live() -> Response:
        return _json({"live": True})

    @app.get("/v2/health/ready")
    async def ready() -> Response:
        if not runtime.ready:
            return _error(503, "model is not loaded yet")
        return _json({"ready": True})

    @app.get("/healthz")
    async def healthz() -> Response:
        return _json({"status": "ok"})

    @app.get("/readyz")
    async def readyz() -> Response:
        if not runtime.ready:
            return _error(503, "model is not loaded yet")
        return _json({"status": "ready"})

    @app.get("/v2")
    async def server_metadata() -> Response:
        return _json(
            {
                "name": SERVER_NAME,
                "version": __version__,
                "extensions": ["binary_tensor_data", "model_repository_readonly"],
            }
        )

    # model metadata and readiness --------------------------------------------------------

    def metadata(model_name: str, model_version: str | None) -> Response:
        try:
            adapter = runtime.check_model(model_name, model_version)
        except HttpError as exc:
            return _error(exc.status, exc.message)
        return _json(adapter.metadata())

    def model_ready(model_name: str, model_version: str | None) -> Response:
        try:
            runtime.check_model(model_name, model_version)
        except HttpError as exc:
            return _error(exc.status, exc.message)
        return _json({"name": model_name, "ready": True})

    @app.get("/v2/models/{model_name}")
    async def model_metadata(model_name: str) -> Response:
        return metadata(model_name, None)

    @app.get("/v2/models/{model_name}/versions/{model_version}")
    async def model_version_metadata(model_name: str, model_version: str) -> Response:
        return metadata(model_name, model_version)

    @app.get("/v2/models/{model_name}/ready")
    async def model_is_ready(model_name: str) -> Response:
        return model_ready(model_name, None)

    @app.get("/v2/models/{model_name}/versions/{model_version}/ready")
    async def model_version_is_ready(model_name: str, model_version: str) -> Response:
        return model_ready(model_name, model_version)

    # inference ---------------------------------------------------------------------------

    async def do_infer(request: Request, model_name: str, model_version: str | None) -> Response:
        adapter = runtime.check_model(model_name, model_version)
        assert runtime.runner is not None
        body = await _read_body(request, config.max_request_bytes)
        payload, x, selected = _decode_infer_request(request.headers, body, adapter)
        result = await runtime.runner.run(x, frozenset(name for name, _ in selected))
        return _infer_response(adapter, payload, result, selected)

    @app.post("/v2/models/{model_name}/infer")
    async def infer(request: Request, model_name: str) -> Response:
        return await timed(lambda: do_infer(request, model_name, None))

    @app.post("/v2/models/{model_name}/versions/{model_version}/infer")
    async def infer_version(request: Request, model_name: str, model_version: str) -> Response:
        return await timed(lambda: do_infer(request, model_name, model_version))

    async def do_predict(request: Request, model_name: str | None) -> Response:
        adapter = runtime.check_model(model_name or runtime.name, None)
        assert runtime.runner is not None
        body = await _read_body(request, config.max_request_bytes)
        x, _ = _decode_predict_request(body, adapter)
        want = frozenset((PREDICT, PREDICT_PROBA) if adapter.has_proba else (PREDICT,))
        result = await runtime.runner.run(x, want)
        response: dict[str, Any] = {"predictions": result[PREDICT].tolist()}
        if PREDICT_PROBA in result:
            response["probabilities"] = result[PREDICT_PROBA].tolist()
        return _json(response)

    @app.post("/predict")
    async def predict(request: Request) -> Response:
        return await timed(lambda: do_predict(request, None))

    @app.post("/v1/models/{model_name}:predict")
    async def predict_v1(request: Request, model_name: str) -> Response:
        return await timed(lambda: do_predict(request, model_name))

    # metrics -----------------------------------------------------------------------------

    @app.get("/metrics")
    async def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app
