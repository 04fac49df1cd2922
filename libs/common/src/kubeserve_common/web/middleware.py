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
from kubeserve_common.errors import BadRequest, KubeServeError, PayloadTooLarge
from kubeserve_common.logging import request_id_var, service_var
from kubeserve_common.metrics import HTTP_LATENCY, HTTP_REQUESTS
from kubeserve_common.web.outages import OUTAGE_LOG, RETRY_AFTER_SECONDS, Outage, classify

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


def request_id_for(scope: Scope) -> str:
    """A well-formed incoming `X-Request-ID`, else 128 random bits as 32 hex digits (what
    uuid4().hex gave, without building a UUID)."""
    incoming = _header(scope, b"x-request-id")
    return incoming if incoming and _SAFE_ID.match(incoming) else os.urandom(16).hex()


@dataclass(eq=False)
class RequestMetrics:
    """The request counter and latency histogram of one service. The label children are kept:
    `labels()` validates and locks on every call, a dict lookup does not. Bounded: route labels
    are templates, but methods and statuses come from outside."""

    service: str
    _children: Lru[tuple[str, str, int], tuple[Any, Any]] = field(
        default_factory=lambda: Lru(4096), init=False
    )

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:
            children = (
                HTTP_REQUESTS.labels(self.service, method, route, str(status)),
                HTTP_LATENCY.labels(self.service, method, route),
            )
            self._children.put(key, children)
        children[0].inc()
        children[1].observe(seconds)


@dataclass(eq=False)
class RequestContextMiddleware(_HTTPMiddleware):
    """Adopt a well-formed incoming `X-Request-ID` or make one; echo it; record metrics."""

    app: ASGIApp
    service: str
    _metrics: RequestMetrics = field(init=False)

    def __post_init__(self) -> None:
        self._metrics = RequestMetrics(self.service)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = request_id_for(scope)
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
            method = scope.get("method", "GET")
            self._metrics.observe(method, template, status, time.perf_counter() - started)
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
            if started:
                note_unexpected(exc, self.service)
                raise
            await send_unexpected(send, exc, self.service)


def note_unexpected(exc: Exception, service: str | None) -> Outage | None:
    """Log an unexpected exception once - or, when it says a dependency is unreachable, once
    per outage - and return that outage (None for a plain bug)."""
    outage = classify(exc)
    if outage is None:
        log.exception("unhandled error", exc_info=exc)
    else:
        OUTAGE_LOG.note(service or service_var.get() or "unknown", outage, exc)
    return outage


async def send_unexpected(
    send: Send,
    exc: Exception,
    service: str | None,
    extra_headers: list[tuple[bytes, bytes]] | None = None,
) -> int:
    """Answer an unexpected exception (logged by `note_unexpected`): the JSON 500, or a 503
    with `Retry-After` naming the dependency that is away. Returns the status sent."""
    outage = note_unexpected(exc, service)
    extra = list(extra_headers or [])
    if outage is None:
        status, code, message = 500, "internal", "internal error; see the server logs"
    else:
        status, code, message = 503, outage.code, outage.message
        extra.append((b"retry-after", str(RETRY_AFTER_SECONDS).encode()))
    await send_error(send, status, code, message, close=False, extra_headers=extra)
    return status


@dataclass(eq=False)
class BodySizeLimitMiddleware(_HTTPMiddleware):
    """Refuse bodies over `max_bytes` with 413, by Content-Length up front and by counting a
    streamed body, so an oversized upload is never buffered."""

    app: ASGIApp
    max_bytes: int

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await _check_declared_length(scope, receive, self.max_bytes)
        except KubeServeError as refusal:
            await send_error(send, refusal.http_status, refusal.code, refusal.message)
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
                        await send_error(send, 413, "payload_too_large", too_large(self.max_bytes))
                    refused = True
                    return {"type": "http.disconnect"}
            return message

        await self.app(scope, limited_receive, send_wrapper)
        if refused:
            await _drain(receive)


DRAIN_LIMIT = 8 * 1024 * 1024
_CLOSE = {"Connection": "close"}


def too_large(max_bytes: int) -> str:
    return f"request body exceeds the limit of {max_bytes} bytes"


async def _check_declared_length(scope: Scope, receive: Receive, max_bytes: int) -> int | None:
    """The declared Content-Length (None without one); BadRequest when it is not a number,
    PayloadTooLarge when it is over `max_bytes`. Both close the connection."""
    declared = _header(scope, b"content-length")
    if declared is None:
        return None
    if not declared.isdigit():
        raise BadRequest("invalid Content-Length header", headers=_CLOSE)
    length = int(declared)
    if length > max_bytes:
        if length <= DRAIN_LIMIT:
            # Read the body first: the server's receive() ends once a response is complete,
            # and closing with unread data resets the connection, so the client (or a proxy
            # in front of us) would never see this 413.
            await _drain(receive)
        raise PayloadTooLarge(too_large(max_bytes), headers=_CLOSE)
    return length


async def read_body(scope: Scope, receive: Receive, max_bytes: int) -> bytes | None:
    """The whole request body, for a handler that needs it at once (None when the request
    declares none), refused as BodySizeLimitMiddleware refuses: BadRequest for an invalid
    Content-Length or a client that left mid-body, PayloadTooLarge over `max_bytes`."""
    declared = await _check_declared_length(scope, receive, max_bytes)
    if declared == 0 or (declared is None and _header(scope, b"transfer-encoding") is None):
        return None
    parts: list[bytes] = []
    seen = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise BadRequest("the client disconnected during the request body")
        chunk: bytes = message.get("body", b"")
        seen += len(chunk)
        more = message.get("more_body", False)
        if seen > max_bytes:
            if more:
                await _drain(receive)
            raise PayloadTooLarge(too_large(max_bytes), headers=_CLOSE)
        parts.append(chunk)
        if not more:
            return parts[0] if len(parts) == 1 else b"".join(parts)


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


async def send_error(
    send: Send,
    status: int,
    code: str,
    message: str,
    *,
    close: bool = True,
    extra_headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    headers = [(b"connection", b"close")] if close else []
    headers += extra_headers or []
    await send_json(send, status, {"error": {"code": code, "message": message}}, headers)


async def send_json(
    send: Send, status: int, body: dict[str, Any], headers: list[tuple[bytes, bytes]]
) -> None:
    """A whole JSON response in two ASGI messages; `headers` besides its type and length."""
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
