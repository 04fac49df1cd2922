"""HTTP adapters of the gateway: the catch-all proxy under /api/v1, the merged public OpenAPI
document and its Swagger UI."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse
from kubeserve_common.logging import request_id_var
from kubeserve_common.web.middleware import ROUTE_LABEL_SCOPE_KEY
from starlette.background import BackgroundTask
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Receive, Scope, Send

from kubeserve_gateway.domain.route_labels import route_label
from kubeserve_gateway.services.gateway import GatewayService, IncomingRequest
from kubeserve_gateway.services.openapi import OpenApiService

log = logging.getLogger(__name__)

PROXY_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
_PROXY_METHOD_SET = frozenset(PROXY_METHODS)
PROXY_PATH = "/api/v1/{path:path}"
PREDICT_PREFIX = "/api/v1/predict/"
OPENAPI_PATH = "/api/v1/openapi.json"


def _has_body(request: Request) -> bool:
    length = request.headers.get("content-length")
    if length is not None:
        return length.strip() != "0"
    return "transfer-encoding" in request.headers


async def proxy_request(request: Request) -> Response:
    """Forward `request` through the gateway service and relay the upstream's answer."""
    service: GatewayService = request.app.state.gateway.service
    scope = request.scope
    # The metrics label this request by its public route template, not the catch-all's.
    scope[ROUTE_LABEL_SCOPE_KEY] = route_label(service.routes, scope["method"], scope["path"])
    client = scope.get("client")
    incoming = IncomingRequest(
        method=scope["method"],
        path=scope["path"],  # decoded; re-encoded when forwarded
        query=scope.get("query_string", b"").decode("latin-1"),
        headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]],
        body=request.stream() if _has_body(request) else None,
        peer=client[0] if client else None,
        scheme=scope.get("scheme", "http"),
        request_id=request_id_var.get(),
    )
    try:
        upstream = await service.handle(incoming)
    except ClientDisconnect:
        # The client went away mid-upload; the upstream call was aborted with it.
        log.info("client disconnected during the request body")
        return Response(status_code=400)
    response: Response
    if upstream.content is not None:
        response = Response(upstream.content, status_code=upstream.status)
    else:
        response = StreamingResponse(
            upstream.body,
            status_code=upstream.status,
            background=BackgroundTask(upstream.close),
        )
    response.raw_headers = upstream.raw_headers
    return response


class PredictionFastPath:
    """Pure ASGI, innermost: serves `/api/v1/predict/...` straight with `proxy_request`,
    skipping FastAPI's route matching and request handler (about a fifth of the gateway's CPU
    per prediction, py-spy). Everything outside it - request ids, metrics, body limits, the
    prediction stats, the error middlewares - still runs. What the route would do is kept:
    the scope names the catch-all route (metrics label it as before) and an error becomes
    the response of the app's exception handler for it, as inside a route."""

    def __init__(self, app: ASGIApp, route: Any) -> None:
        self.app = app
        self.route = route

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or not scope["path"].startswith(PREDICT_PREFIX)
            or scope["method"] not in _PROXY_METHOD_SET
        ):
            await self.app(scope, receive, send)
            return
        scope["route"] = self.route
        scope["endpoint"] = self.route.endpoint
        request = Request(scope, receive, send)
        try:
            response = await proxy_request(request)
        except Exception as exc:
            handler = _handler_for(scope, exc)
            if handler is None:
                raise
            response = await handler(request, exc)
        await response(scope, receive, send)


def find_route(routes: list[Any], path: str) -> Any:
    """The route serving `path` among `routes`, looking into included routers."""
    for route in routes:
        if getattr(route, "path", None) == path:
            return route
        inner = getattr(route, "original_router", None) or getattr(route, "routes", None)
        if inner is not None:
            found = find_route(getattr(inner, "routes", inner), path)
            if found is not None:
                return found
    return None


def _handler_for(scope: Scope, exc: Exception) -> Any:
    handlers = getattr(scope.get("app"), "exception_handlers", None) or {}
    for cls in type(exc).__mro__:
        if cls in handlers:
            return handlers[cls]
    return None


def public_router() -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get(OPENAPI_PATH)
    async def openapi_document(request: Request) -> JSONResponse:
        service: OpenApiService = request.app.state.gateway.openapi
        return JSONResponse(await service.document())

    @router.get("/docs")
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=OPENAPI_PATH, title="KubeServe API")

    @router.api_route(PROXY_PATH, methods=PROXY_METHODS)
    async def proxy(request: Request) -> Response:
        return await proxy_request(request)

    return router


def remove_default_docs(routes: list[Any]) -> list[Any]:
    """FastAPI's own /docs, /redoc and /openapi.json describe only the gateway's health routes;
    the gateway serves the public API's document instead."""
    defaults = {"/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"}
    return [r for r in routes if getattr(r, "path", None) not in defaults]
