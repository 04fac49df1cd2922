"""The runtime's app factory: one served model behind the health, V2, V1 and metrics routers.

`create_app` takes either a loaded model (the local backend's warm pool loads it after fork)
or a path/URI that is loaded once at startup; readiness turns true only after the load.
Start it with `kubeserve_runtime.server.serve` (or any ASGI server).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response

from kubeserve_runtime import __version__, endpoints
from kubeserve_runtime.http import error_response
from kubeserve_runtime.metrics import RuntimeMetrics
from kubeserve_runtime.settings import RuntimeConfig
from kubeserve_runtime.state import Runtime

# Kept importable from here: tests and the deployer's docs name them.
SERVER_NAME = endpoints.SERVER_NAME
__all__ = ["SERVER_NAME", "RuntimeConfig", "create_app"]


def create_app(
    model: Any,
    name: str,
    version: str = "v1",
    *,
    deployment_id: str | None = None,
    tenant: str | None = None,
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
        tenant=tenant,
        max_batch_size=max_batch_size,
        max_batch_wait_ms=max_batch_wait_ms,
        model_threads=model_threads,
        max_request_bytes=max_request_bytes,
    )
    metrics = RuntimeMetrics(config.deployment_id or name, version, tenant=config.tenant)
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
        title=endpoints.SERVER_NAME,
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        # Metrics are Prometheus (/metrics). FastAPI's native OpenTelemetry hook would otherwise
        # look the global providers up (environment reads) on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.runtime = runtime
    for router in (endpoints.health, endpoints.oip_v2, endpoints.kserve_v1, endpoints.metrics):
        app.include_router(router)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        return error_response(exc.status_code, str(exc.detail))

    return app
