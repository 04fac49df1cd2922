"""HTTP adapters of the gateway: the catch-all proxy under /api/v1, the merged public OpenAPI
document and its Swagger UI."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterable
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse
from kubeserve_common.logging import request_id_var
from kubeserve_common.web.middleware import ROUTE_LABEL_SCOPE_KEY
from starlette.background import BackgroundTask
from starlette.requests import ClientDisconnect
from starlette.types import Scope

from kubeserve_gateway.domain.route_labels import route_label
from kubeserve_gateway.services.gateway import GatewayService, IncomingRequest
from kubeserve_gateway.services.openapi import OpenApiService

log = logging.getLogger(__name__)

PROXY_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
PROXY_PATH = "/api/v1/{path:path}"
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
    incoming = incoming_request(
        scope, request.stream() if _has_body(request) else None, request_id_var.get()
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


def incoming_request(
    scope: Scope, body: AsyncIterable[bytes] | bytes | None, request_id: str | None
) -> IncomingRequest:
    """What the gateway service needs to know of an ASGI request."""
    client = scope.get("client")
    return IncomingRequest(
        method=scope["method"],
        path=scope["path"],  # decoded; re-encoded when forwarded
        query=scope.get("query_string", b"").decode("latin-1"),
        headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]],
        body=body,
        peer=client[0] if client else None,
        scheme=scope.get("scheme", "http"),
        request_id=request_id,
    )


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
