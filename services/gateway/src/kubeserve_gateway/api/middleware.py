"""Per-route request body limits: the model-upload route gets the large limit, every other
route the default. Pure ASGI around the shared BodySizeLimitMiddleware, so bodies stream."""

from __future__ import annotations

from collections.abc import Mapping

from kubeserve_common.web.middleware import BodySizeLimitMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from kubeserve_gateway.domain.routes import BodyLimit, RouteTable


class RouteBodyLimitMiddleware:
    def __init__(self, app: ASGIApp, routes: RouteTable, limits: Mapping[BodyLimit, int]) -> None:
        self.app = app
        self.routes = routes
        self._limited = {
            kind: BodySizeLimitMiddleware(app, max_bytes=n) for kind, n in limits.items()
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        match = self.routes.match(scope.get("method", "GET"), scope.get("path", ""))
        kind = match.route.body_limit if match is not None else BodyLimit.DEFAULT
        await self._limited[kind](scope, receive, send)
