"""`create_service_app()`: the FastAPI app every service starts from - lifespan that starts and
stops its container, one error-handler set, request ids, metrics, `/healthz`, `/readyz`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypedDict, Unpack

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp

from kubeserve_common.logging import service_var
from kubeserve_common.metrics import render_latest
from kubeserve_common.service import ServiceContainer
from kubeserve_common.web.errors import install_error_handlers
from kubeserve_common.web.middleware import (
    BodySizeLimitMiddleware,
    RequestContextMiddleware,
    UnexpectedErrorMiddleware,
)


def health_router() -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/healthz", summary="Liveness: the process answers")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz", summary="Readiness: what this service needs to do its job")
    async def readyz(request: Request) -> JSONResponse:
        container: ServiceContainer = request.app.state.container
        checks = await container.readiness()
        ready = container.is_ready(checks)
        status = "unavailable"
        if ready:
            status = "ok" if all(v == "ok" for v in checks.values()) else "degraded"
        return JSONResponse(
            {"status": status, "checks": checks, "requires": sorted(container.ready_requires)},
            status_code=200 if ready else 503,
        )

    @router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
    async def metrics() -> Response:
        body, content_type = render_latest()
        return Response(body, media_type=content_type)

    return router


class ServiceApp(FastAPI):
    """A FastAPI app that can also be wrapped outside the framework's own middleware, for a
    layer that must see requests first and answer some of them without the stack (the
    gateway's prediction entry). Wrappers apply in order: the last one added is outermost."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._outside: list[Callable[[ASGIApp], ASGIApp]] = []

    def wrap_outside(self, wrapper: Callable[[ASGIApp], ASGIApp]) -> None:
        if self.middleware_stack is not None:
            raise RuntimeError("cannot wrap an application that has already started")
        self._outside.append(wrapper)

    def build_middleware_stack(self) -> ASGIApp:
        app = super().build_middleware_stack()
        for wrap in self._outside:
            app = wrap(app)
        return app


class Hosting(TypedDict, total=False):
    """How an app runs its container, the keywords every service's `create_app` passes on:
    `manage_container=False` when something else (the embedded runner, a test) starts it;
    `consume=False` to start it without consuming events. Both default to True."""

    manage_container: bool
    consume: bool


def create_service_app(
    container: ServiceContainer,
    routers: Sequence[APIRouter] = (),
    *,
    title: str | None = None,
    max_body_bytes: int = 1024 * 1024,
    **hosting: Unpack[Hosting],
) -> ServiceApp:
    manage_container = hosting.get("manage_container", True)
    consume = hosting.get("consume", True)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        token = service_var.set(container.name)
        if manage_container:
            await container.start(consume=consume)
        try:
            yield
        finally:
            if manage_container:
                await container.stop()
            service_var.reset(token)

    app = ServiceApp(
        title=title or f"KubeServe {container.name}",
        lifespan=lifespan,
        # Metrics are Prometheus (kubeserve_common.metrics). FastAPI's native OpenTelemetry hook
        # would otherwise look the global providers up (environment reads) on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.container = container
    install_error_handlers(app)
    app.include_router(health_router())
    for router in routers:
        app.include_router(router)
    # Added first = innermost: it sees route errors before Starlette's outer error middleware.
    app.add_middleware(UnexpectedErrorMiddleware, service=container.name)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=max_body_bytes)
    app.add_middleware(RequestContextMiddleware, service=container.name)
    return app
