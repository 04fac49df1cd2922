"""The prediction entry: `/api/v1/predict/...` served by one pure-ASGI layer, outside the app's
middleware stack; every other request goes on to the app.

Why: a lone caller pays every layer a request passes. Through the framework's stack a
prediction crossed eleven (Starlette's and FastAPI's own, then request ids, two body limits,
errors, browser sessions, prediction stats), each a coroutine and most a `send` wrapper, for
about a quarter of the gateway's CPU per prediction (py-spy, `bench/bench_predict_gateway.py`).
Here one coroutine does what those layers did for a prediction, with the same shared pieces:

- the request id (`request_id_for`), echoed on every answer, and the request metrics
  (`RequestMetrics`, labelled by the public route template);
- the route's body limit (`read_body`: 400 for a bad Content-Length, 413 over the limit);
- errors: a `KubeServeError` leaves as its JSON body and headers (`error_headers`), anything
  else as the JSON 500 or, when a dependency is away, a 503 (`send_unexpected`);
- the dashboard's prediction stats (POSTs only; refusals that say nothing about the model are
  not counted).

Browser sessions concern only `/api/v1/auth/...`, so nothing is skipped for a prediction; CORS,
when configured, wraps this entry (main.py)."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping

from kubeserve_common.errors import KubeServeError
from kubeserve_common.logging import request_id_var
from kubeserve_common.web.errors import error_headers
from kubeserve_common.web.middleware import (
    REQUEST_ID_HEADER,
    RequestMetrics,
    note_unexpected,
    read_body,
    request_id_for,
    send_json,
    send_unexpected,
)
from starlette.types import ASGIApp, Receive, Scope, Send

from kubeserve_gateway.adapters.http import UpstreamResponse
from kubeserve_gateway.api.routes import incoming_request
from kubeserve_gateway.domain.route_labels import route_label
from kubeserve_gateway.domain.routes import BodyLimit
from kubeserve_gateway.services.gateway import GatewayService
from kubeserve_gateway.services.prediction_stats import PredictionStats

PREDICT_PREFIX = "/api/v1/predict/"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_DEPLOYMENT = re.compile(r"^/api/v1/predict/([0-9a-fA-F-]{36})(?:/.*)?$")
# Refusals that say nothing about the model: not in the stats (and a stranger cannot skew them).
_NOT_COUNTED = frozenset({401, 403, 404, 405, 429})
_REQUEST_ID = REQUEST_ID_HEADER.encode()


class PredictionEntry:
    def __init__(
        self,
        app: ASGIApp,
        *,
        service: GatewayService,
        stats: PredictionStats,
        body_limits: Mapping[BodyLimit, int],
        service_name: str,
    ) -> None:
        self.app = app
        self.service = service
        self.stats = stats
        self.body_limits = dict(body_limits)
        self.metrics = RequestMetrics(service_name)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or not scope["path"].startswith(PREDICT_PREFIX)
            or scope["method"] not in _METHODS
        ):
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        request_id = request_id_for(scope)
        token = request_id_var.set(request_id)
        echo = (_REQUEST_ID, request_id.encode())
        started = time.perf_counter()
        status = 500  # what the client was told (a failure mid-stream keeps the status sent)
        try:
            try:
                upstream = await self._forward(scope, receive, request_id)
            except KubeServeError as exc:
                status = exc.http_status
                await send_json(send, status, exc.to_body(), [*_encoded(error_headers(exc)), echo])
                return
            except Exception as exc:
                status = await send_unexpected(send, exc, self.metrics.service, [echo])
                return
            status = upstream.status
            try:
                await _relay(upstream, send, echo)
            except Exception as exc:
                # The answer has started: all that is left is to cut it (the server closes the
                # connection), so the client sees a broken body, never a truncated one.
                note_unexpected(exc, self.metrics.service)
                raise
        finally:
            seconds = time.perf_counter() - started
            label = route_label(self.service.routes, method, path)
            self.metrics.observe(method, label, status, seconds)
            if method == "POST" and status not in _NOT_COUNTED:
                deployment = _DEPLOYMENT.match(path)
                if deployment is not None:
                    self.stats.record(deployment.group(1).lower(), status, seconds)
            request_id_var.reset(token)

    async def _forward(self, scope: Scope, receive: Receive, request_id: str) -> UpstreamResponse:
        method, path = scope["method"], scope["path"]
        match = self.service.routes.match(method, path)  # memoized by the table
        limit = self.body_limits[match.route.body_limit if match else BodyLimit.DEFAULT]
        body = await read_body(scope, receive, limit)
        return await self.service.handle(incoming_request(scope, body, request_id))


def _encoded(headers: Mapping[str, str]) -> list[tuple[bytes, bytes]]:
    return [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]


async def _relay(upstream: UpstreamResponse, send: Send, echo: tuple[bytes, bytes]) -> None:
    """The replica's answer as it came (status, headers, body), with the request id."""
    upstream.raw_headers.append(echo)
    start = {"type": "http.response.start", "status": upstream.status}
    if upstream.content is not None:
        await send({**start, "headers": upstream.raw_headers})
        await send({"type": "http.response.body", "body": upstream.content})
        return
    try:
        await send({**start, "headers": upstream.raw_headers})
        async for chunk in upstream.body:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    finally:
        await upstream.close()
