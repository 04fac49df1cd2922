"""HTTP adapters of the gateway: the catch-all proxy under /api/v1, the merged public OpenAPI
document and its Swagger UI."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse
from kubeserve_common.logging import request_id_var
from starlette.background import BackgroundTask
from starlette.requests import ClientDisconnect

from kubeserve_gateway.services.gateway import GatewayService, IncomingRequest
from kubeserve_gateway.services.openapi import OpenApiService

log = logging.getLogger(__name__)

PROXY_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
OPENAPI_PATH = "/api/v1/openapi.json"


def _has_body(request: Request) -> bool:
    length = request.headers.get("content-length")
    if length is not None:
        return length.strip() != "0"
    return "transfer-encoding" in request.headers


def public_router() -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get(OPENAPI_PATH)
    async def openapi_document(request: Request) -> JSONResponse:
        service: OpenApiService = request.app.state.gateway.openapi
        return JSONResponse(await service.document())

    @router.get("/docs")
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=OPENAPI_PATH, title="KubeServe API")

    @router.api_route("/api/v1/{path:path}", methods=PROXY_METHODS)
    async def proxy(request: Request) -> Response:
        service: GatewayService = request.app.state.gateway.service
        client = request.client
        incoming = IncomingRequest(
            method=request.method,
            path=request.scope["path"],  # decoded; re-encoded when forwarded
            query=request.scope.get("query_string", b"").decode("latin-1"),
            headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw],
            body=request.stream() if _has_body(request) else None,
            peer=client.host if client else None,
            scheme=request.url.scheme,
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

    return router


def remove_default_docs(routes: list[Any]) -> list[Any]:
    """FastAPI's own /docs, /redoc and /openapi.json describe only the gateway's health routes;
    the gateway serves the public API's document instead."""
    defaults = {"/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"}
    return [r for r in routes if getattr(r, "path", None) not in defaults]
