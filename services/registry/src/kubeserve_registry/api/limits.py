"""Body limits per route: only the version upload may send a large body; everything else is
held to the small JSON limit before FastAPI reads (and buffers) it."""

from __future__ import annotations

import re

from kubeserve_common.web.middleware import BodySizeLimitMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

_UPLOAD = re.compile(r"^/models/[^/]+/versions/?$")


class PerRouteBodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.small = BodySizeLimitMiddleware(app, max_bytes=max_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not (
            scope.get("method") == "POST" and _UPLOAD.match(scope.get("path", ""))
        ):
            await self.small(scope, receive, send)
            return
        await self.app(scope, receive, send)
