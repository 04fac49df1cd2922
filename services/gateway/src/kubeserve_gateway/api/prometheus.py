"""Prometheus discovery routes (adapters only):

- `GET /internal/prometheus/targets`: http_sd target groups of every platform process and every
  ready replica, labelled `service`, `tenant`, `deployment`, `deployment_name`, `version`,
  `replica`;
- `GET /internal/prometheus/replicas/{deployment_id}/{replica}/metrics`: one replica's metrics,
  relayed (local replicas listen on Unix sockets only the gateway dials).

Who may call them: a client on the loopback interface whose request was not forwarded (no
`X-Forwarded-For` / `Forwarded`: a local reverse proxy would otherwise lend its address to the
internet), or anyone presenting `Authorization: Bearer <KUBESERVE_METRICS_TOKEN>`. Everyone
else gets 401. These routes expose tenant ids and deployment names, never predictions."""

from __future__ import annotations

import hmac
import ipaddress
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from kubeserve_common.errors import Unauthorized

from kubeserve_gateway.services.prometheus_sd import PrometheusDiscovery

EXPOSITION = "text/plain; version=0.0.4; charset=utf-8"


def _loopback(request: Request) -> bool:
    if "x-forwarded-for" in request.headers or "forwarded" in request.headers:
        return False
    host = request.client.host if request.client else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def authorize(request: Request) -> PrometheusDiscovery:
    components: Any = request.app.state.gateway
    token = components.settings.metrics_token
    given = request.headers.get("authorization", "")
    if token is not None and given.lower().startswith("bearer "):
        expected = token.get_secret_value().encode()
        if hmac.compare_digest(given[7:].strip().encode(), expected):
            return components.discovery  # type: ignore[no-any-return]
    if _loopback(request):
        return components.discovery  # type: ignore[no-any-return]
    raise Unauthorized(
        "Prometheus discovery: call from the loopback interface or send "
        "Authorization: Bearer <KUBESERVE_METRICS_TOKEN>",
        headers={"WWW-Authenticate": "Bearer"},
    )


def prometheus_router() -> APIRouter:
    router = APIRouter(prefix="/internal/prometheus", include_in_schema=False)

    @router.get("/targets")
    async def targets(request: Request) -> JSONResponse:
        return JSONResponse(await authorize(request).targets())

    @router.get("/replicas/{deployment_id}/{replica}/metrics")
    async def replica_metrics(request: Request, deployment_id: str, replica: str) -> Response:
        body = await authorize(request).replica_metrics(deployment_id, replica)
        return Response(body, media_type=EXPOSITION)

    return router
