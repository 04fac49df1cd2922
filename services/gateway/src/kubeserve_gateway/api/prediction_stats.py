"""Times every prediction request (`/api/v1/predict/{deployment_id}[/...]`) into the gateway's
`PredictionStats`. Pure ASGI, so response bodies keep streaming."""

from __future__ import annotations

import re
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kubeserve_gateway.services.prediction_stats import PredictionStats

_PREDICT = re.compile(r"^/api/v1/predict/([0-9a-fA-F-]{36})(?:/.*)?$")
# Refusals that say nothing about the model: not counted (and a stranger cannot skew them).
_IGNORED = frozenset({401, 403, 404, 405, 429})


class PredictionStatsMiddleware:
    def __init__(self, app: ASGIApp, stats: PredictionStats) -> None:
        self.app = app
        self.stats = stats

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = _PREDICT.match(scope.get("path", "")) if scope["type"] == "http" else None
        if match is None or scope.get("method") not in ("POST",):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def timed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, timed_send)
        finally:
            if status not in _IGNORED:
                self.stats.record(match.group(1).lower(), status, time.perf_counter() - started)
