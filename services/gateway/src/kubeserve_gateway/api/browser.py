"""Routes the gateway answers itself for the dashboard: the public client config, one-time
tickets and the server-sent events stream of the caller's own lifecycle events, and the recent
prediction traffic of one of the caller's deployments."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from kubeserve_common.errors import (
    Forbidden,
    NotFound,
    RateLimited,
    ServiceUnavailable,
    Unauthorized,
)
from kubeserve_common.security.principal import Principal

from kubeserve_gateway.adapters.deployer import DeployerUnavailable
from kubeserve_gateway.api.shutdown import install_shutdown_hook
from kubeserve_gateway.domain.errors import UpstreamUnavailable
from kubeserve_gateway.domain.tickets import InvalidTicket
from kubeserve_gateway.services.authenticator import extract_credential
from kubeserve_gateway.services.browser import BrowserComponents
from kubeserve_gateway.services.events import ShuttingDown, TooManyConnections
from kubeserve_gateway.services.gateway import GatewayService, IncomingRequest
from kubeserve_gateway.settings import GatewaySettings


def _incoming(request: Request) -> IncomingRequest:
    client = request.client
    return IncomingRequest(
        method=request.method,
        path=request.scope["path"],
        query="",
        headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw],
        body=None,
        peer=client.host if client else None,
        scheme=request.url.scheme,
    )


async def _caller(request: Request, *, full_user: bool = True) -> Principal:
    """The verified caller, within its rate limit (a failed authentication spends the client
    IP's); `full_user` refuses deployment-scoped keys."""
    service: GatewayService = request.app.state.gateway.service
    incoming = _incoming(request)
    try:
        credential = extract_credential(
            request.headers.get("authorization"), request.headers.get("x-api-key")
        )
        principal = await service.authenticator.authenticate(credential)
    except Unauthorized:
        await service.limit_ip(service.client_ip(incoming))
        raise
    if full_user and principal.deployment_scope is not None:
        raise Forbidden("this API key is limited to specific deployments")
    await service.limit_principal(principal)
    return principal


def browser_router() -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/api/v1/config")
    async def client_config(request: Request) -> JSONResponse:
        settings: GatewaySettings = request.app.state.gateway.settings
        grafana = settings.grafana_url.rstrip("/") if settings.grafana_url else None
        return JSONResponse(
            {
                "grafana": {
                    "url": grafana,
                    "dashboard_uid": settings.grafana_dashboard_uid,
                    "panels": settings.grafana_panels,
                }
                if grafana
                else None,
                "events": {"ticket_ttl_seconds": settings.events_ticket_ttl},
            },
            headers={"cache-control": "no-cache"},
        )

    @router.post("/api/v1/events/ticket")
    async def events_ticket(request: Request) -> JSONResponse:
        principal = await _caller(request)
        browser: BrowserComponents = request.app.state.browser
        ticket, ttl = browser.tickets.issue(principal)
        return JSONResponse(
            {"ticket": ticket, "expires_in": ttl},
            headers={"cache-control": "no-store"},
        )

    @router.get("/api/v1/events")
    async def events(request: Request, ticket: str = Query(default="")) -> StreamingResponse:
        service: GatewayService = request.app.state.gateway.service
        settings: GatewaySettings = request.app.state.gateway.settings
        browser: BrowserComponents = request.app.state.browser
        await service.limit_ip(service.client_ip(_incoming(request)))
        if not ticket:
            raise Unauthorized(
                "an events ticket is required: POST /api/v1/events/ticket, then "
                "GET /api/v1/events?ticket=..."
            )
        try:
            principal = browser.tickets.redeem(ticket)
        except InvalidTicket as exc:
            raise Unauthorized(f"invalid events ticket: {exc}") from None
        install_shutdown_hook(browser.hub, asyncio.get_running_loop())
        try:
            conn = browser.hub.connect(str(principal.user_id))
        except TooManyConnections as exc:
            raise RateLimited(str(exc), headers={"Retry-After": "10"}) from None
        except ShuttingDown as exc:
            raise ServiceUnavailable(str(exc), headers={"Retry-After": "5"}) from None

        heartbeat = settings.events_heartbeat
        deadline = time.monotonic() + settings.events_max_stream_seconds

        async def stream() -> AsyncIterator[str]:
            try:
                # retry: how long EventSource waits before reconnecting on its own.
                yield "retry: 3000\nevent: ready\ndata: {}\n\n"
                while True:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        # Re-authenticate now and then: the client asks a new ticket.
                        yield "event: expired\ndata: {}\n\n"
                        return
                    try:
                        message = await asyncio.wait_for(
                            conn.queue.get(), timeout=min(heartbeat, left)
                        )
                    except TimeoutError:
                        yield ": keep-alive\n\n"
                        continue
                    if message is None:  # too slow, or the server is stopping
                        name = "overflow" if conn.overflowed else "shutdown"
                        yield f"event: {name}\ndata: {{}}\n\n"
                        return
                    yield f"data: {message}\n\n"
            finally:
                browser.hub.disconnect(conn)

        return StreamingResponse(
            stream(),
            media_type="text/event-stream",
            headers={"cache-control": "no-store", "x-accel-buffering": "no"},
        )

    @router.get("/api/v1/metrics/deployments/{deployment_id}")
    async def deployment_metrics(
        request: Request, deployment_id: str, minutes: int = Query(default=15, ge=1, le=30)
    ) -> JSONResponse:
        principal = await _caller(request, full_user=False)
        browser: BrowserComponents = request.app.state.browser
        try:
            UUID(deployment_id)
        except ValueError:
            raise NotFound("no such deployment") from None
        if not principal.can_use_deployment(deployment_id):
            raise Forbidden(f"this API key is not valid for deployment {deployment_id}")
        try:
            route = await browser.deployer.route(deployment_id)
        except DeployerUnavailable as exc:
            raise UpstreamUnavailable(str(exc), headers={"Retry-After": "2"}) from None
        if route is None or (route.owner_id != principal.user_id and not principal.is_admin):
            raise NotFound("no such deployment")  # another tenant's: 404, not 403
        body: dict[str, Any] = browser.stats.window(deployment_id, minutes)
        return JSONResponse(body, headers={"cache-control": "no-store"})

    return router
