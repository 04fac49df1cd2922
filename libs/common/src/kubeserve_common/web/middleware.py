"""Pure-ASGI middleware: request ids, request metrics and body-size limits.

Pure ASGI (not BaseHTTPMiddleware) so streaming bodies pass through untouched.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from dataclasses import dataclass, field
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kubeserve_common.caching import Lru
from kubeserve_common.logging import request_id_var, service_var
from kubeserve_common.metrics import HTTP_LATENCY, HTTP_REQUESTS
from kubeserve_common.web.outages import OUTAGE_LOG, RETRY_AFTER_SECONDS, classify

log = logging.getLogger(__name__)

REQUEST_ID_HEADER = "x-request-id"
# An app whose single catch-all route serves many endpoints (the gateway's proxy) puts a
# bounded route template here, so `route` in the metrics names the endpoint, never an id.
ROUTE_LABEL_SCOPE_KEY = "kubeserve.route_label"
_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")


class _HTTPMiddleware:
    """What the middlewares below share: other scopes (lifespan, websockets) pass straight
    through; `handle` sees each HTTP request."""

    app: ASGIApp

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.handle(scope, receive, send)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise NotImplementedError


@dataclass(eq=False)
class RequestContextMiddleware(_HTTPMiddleware):
    """Adopt a well-formed incoming `X-Request-ID` or make one; echo it; record metrics."""

    app: ASGIApp
    service: str
    # (method, route, status) -> the metric children: `labels()` validates and locks on every
    # call, a dict lookup does not. Bounded: route labels are templates, but methods and
    # statuses come from outside.
    _metrics: Lru[tuple[str, str, str], tuple[Any, Any]] = field(
        default_factory=lambda: Lru(4096), init=False
    )

    def _children(self, method: str, route: str, status: str) -> tuple[Any, Any]:
        key = (method, route, status)
        children = self._metrics.get(key)
        if children is None:
            children = (
                HTTP_REQUESTS.labels(self.service, method, route, status),
                HTTP_LATENCY.labels(self.service, method, route),
            )
            self._metrics.put(key, children)
        return children

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        incoming = _header(scope, b"x-request-id")
        # 128 random bits as 32 hex digits (what uuid4().hex gave, without building a UUID).
        request_id = incoming if incoming and _SAFE_ID.match(incoming) else os.urandom(16).hex()
        token = request_id_var.set(request_id)
        status = 500
        started = time.perf_counter()

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((REQUEST_ID_HEADER.encode(), request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            template = (
                scope.get(ROUTE_LABEL_SCOPE_KEY) or getattr(route, "path", None) or "unmatched"
            )
            requests, latency = self._children(scope.get("method", "GET"), template, str(status))
            requests.inc()
            latency.observe(time.perf_counter() - started)
            request_id_var.reset(token)


@dataclass(eq=False)
class UnexpectedErrorMiddleware(_HTTPMiddleware):
    """Turn an unhandled exception into the JSON 500 body, logged once - or, when it says a
    dependency is unreachable (database, broker, object store, another service), into a 503
    with `Retry-After` and a code naming it, logged once per outage. Unlike Starlette's
    outermost error middleware it does not re-raise, so the server keeps the connection."""

    app: ASGIApp
    service: str | None = None

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def send_wrapper(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception as exc:
            outage = classify(exc)
            if outage is None:
                log.exception("unhandled error")
            else:
                OUTAGE_LOG.note(self.service or service_var.get() or "unknown", outage, exc)
            if started:
                raise
            if outage is None:
                await _send_error(
                    send, 500, "internal", "internal error; see the server logs", close=False
                )
            else:
                await _send_error(
                    send,
                    503,
                    outage.code,
                    outage.message,
                    close=False,
                    extra_headers=[(b"retry-after", str(RETRY_AFTER_SECONDS).encode())],
                )


@dataclass(eq=False)
class BodySizeLimitMiddleware(_HTTPMiddleware):
    """Refuse bodies over `max_bytes` with 413, by Content-Length up front and by counting a
    streamed body, so an oversized upload is never buffered."""

    app: ASGIApp
    max_bytes: int

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        declared = _header(scope, b"content-length")
        if declared is not None:
            if not declared.isdigit():
                await _send_error(send, 400, "bad_request", "invalid Content-Length header")
                return
            if int(declared) > self.max_bytes:
                if int(declared) <= DRAIN_LIMIT:
                    # Read the body first: the server's receive() ends once a response is
                    # complete, and closing with unread data resets the connection, so the
                    # client (or a proxy in front of us) would never see this 413.
                    await _drain(receive)
                await _send_error(send, 413, "payload_too_large", self._too_large())
                return
        seen = 0
        started = False
        refused = False

        async def send_wrapper(message: Message) -> None:
            nonlocal started
            if refused:
                return  # we already answered 413; the app's own reply goes nowhere
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        async def limited_receive() -> Message:
            nonlocal seen, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    # Answer now and tell the app the client left, so it stops reading.
                    if not started:
                        if message.get("more_body", False):
                            await _drain(receive)  # see above: before answering, not after
                        await _send_error(send, 413, "payload_too_large", self._too_large())
                    refused = True
                    return {"type": "http.disconnect"}
            return message

        await self.app(scope, limited_receive, send_wrapper)
        if refused:
            await _drain(receive)

    def _too_large(self) -> str:
        return f"request body exceeds the limit of {self.max_bytes} bytes"


DRAIN_LIMIT = 8 * 1024 * 1024


async def _drain(receive: Receive) -> None:
    """Read (and drop) a little of the unread body after an early 413: closing a socket with
    unread data makes the kernel send a reset, and the client would never see our answer."""
    drained = 0
    while drained < DRAIN_LIMIT:
        message = await receive()
        if message["type"] != "http.request":
            return
        drained += len(message.get("body", b""))
        if not message.get("more_body", False):
            return


def _header(scope: Scope, name: bytes) -> str | None:
    # ASGI: headers are an iterable of [name, value] byte strings (the Scope type is loose).
    headers: list[tuple[bytes, bytes]] = scope.get("headers", [])
    for key, value in headers:
        if key == name:
            return value.decode("latin-1")
    return None


async def _send_error(
    send: Send,
    status: int,
    code: str,
    message: str,
    *,
    close: bool = True,
    extra_headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    body: dict[str, Any] = {"error": {"code": code, "message": message}}
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                *([(b"connection", b"close")] if close else []),
                *(extra_headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
