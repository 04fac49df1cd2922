"""The gateway's one pooled HTTP client and the streaming upstream calls made with it.
httpx errors are translated here into the gateway's 502/503/504 errors."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx

from kubeserve_gateway.adapters.replica_http import ReplicaPool, translate
from kubeserve_gateway.domain.errors import BadGateway, UpstreamTimeout, UpstreamUnavailable
from kubeserve_gateway.domain.headers import Headers
from kubeserve_gateway.metrics import UPSTREAM_ERRORS
from kubeserve_gateway.settings import GatewaySettings

log = logging.getLogger(__name__)

_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS"})


def create_http_client(settings: GatewaySettings) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        timeout=httpx.Timeout(
            connect=settings.upstream_connect_timeout,
            read=settings.upstream_read_timeout,
            write=settings.upstream_write_timeout,
            pool=settings.upstream_pool_timeout,
        ),
        limits=httpx.Limits(
            max_connections=settings.upstream_max_connections,
            max_keepalive_connections=settings.upstream_max_keepalive,
            # Below uvicorn's 5 s keep-alive, so we rarely reuse a socket the upstream is closing.
            keepalive_expiry=4.0,
        ),
        follow_redirects=False,
        trust_env=False,  # never route internal calls through a proxy from the environment
    )


SMALL_BODY = 64 * 1024  # responses up to this size are relayed in one piece


@dataclass
class UpstreamResponse:
    """`raw_headers` as received (names lower-cased). `content` is the whole body when it was
    small enough to read at once (then `body` is empty); otherwise `body` streams it and
    `close` releases the upstream connection."""

    status: int
    raw_headers: list[tuple[bytes, bytes]]
    body: AsyncIterator[bytes]
    close: Callable[[], Awaitable[None]]
    content: bytes | None = None

    @property
    def headers(self) -> Headers:
        return [(n.decode("latin-1"), v.decode("latin-1")) for n, v in self.raw_headers]


def small_body(raw_headers: list[tuple[bytes, bytes]]) -> bool:
    for name, value in raw_headers:
        if name == b"content-length":
            return value.isdigit() and int(value) <= SMALL_BODY
    return False


async def _nothing() -> AsyncIterator[bytes]:
    return
    yield b""  # pragma: no cover - makes this an async generator


async def _noop() -> None:
    return None


def _translate(exc: httpx.HTTPError, upstream: str) -> Exception:
    error: Exception
    if isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout | httpx.ConnectError):
        error = UpstreamUnavailable(f"the {upstream} service is unavailable; try again shortly")
    elif isinstance(exc, httpx.TimeoutException):
        error = UpstreamTimeout(f"the {upstream} service did not answer in time")
    else:
        error = BadGateway(f"the {upstream} service returned an invalid response")
    UPSTREAM_ERRORS.labels(upstream, getattr(error, "code", "error")).inc()
    return error


class UpstreamClient:
    """Sends one request upstream with a streamed body and returns the streamed response."""

    def __init__(self, client: httpx.AsyncClient, replicas: ReplicaPool | None = None) -> None:
        self.client = client
        self.replicas = replicas

    async def send_buffered(
        self, upstream: str, method: str, url: str, headers: Headers, body: bytes | None
    ) -> UpstreamResponse:
        """A request whose body is already in memory (predictions: replayable on the next
        replica). Through the lean replica pool when there is one, else through httpx."""
        if self.replicas is None:
            content = None if body is None else _once(body)
            return await self.send(upstream, method, url, headers, content)
        try:
            response = await self.replicas.request(method, url, headers, body)
            if small_body(response.headers):
                data = await response.read()
                return UpstreamResponse(response.status, response.headers, _nothing(), _noop, data)
        except Exception as exc:
            if isinstance(exc, UpstreamUnavailable | UpstreamTimeout | BadGateway):
                raise
            error = translate(exc, upstream)
            UPSTREAM_ERRORS.labels(upstream, getattr(error, "code", "error")).inc()
            log.warning(
                "upstream call failed", extra={"upstream": upstream, "error": type(exc).__name__}
            )
            raise error from exc
        return UpstreamResponse(
            response.status,
            response.headers,
            self._relay_replica(response, upstream),
            response.close,
        )

    async def _relay_replica(self, response: Any, upstream: str) -> AsyncIterator[bytes]:
        try:
            async for chunk in response.stream():
                yield chunk
        except Exception as exc:
            log.warning(
                "upstream response broken mid-stream",
                extra={"upstream": upstream, "error": type(exc).__name__},
            )
            raise
        finally:
            await response.close()  # idempotent; gives the connection slot back in any case

    async def send(
        self,
        upstream: str,
        method: str,
        url: str,
        headers: Headers,
        body: AsyncIterable[bytes] | bytes | None,
    ) -> UpstreamResponse:
        request = self.client.build_request(method, url, headers=headers, content=body)
        attempts = 2 if body is None and method in _IDEMPOTENT else 1
        for attempt in range(attempts):
            try:
                response = await self.client.send(request, stream=True)
                break
            except httpx.RemoteProtocolError as exc:
                # A pooled keep-alive socket closed by the upstream under our feet: safe to
                # retry once when there is no body to replay.
                if attempt + 1 < attempts:
                    continue
                raise _translate(exc, upstream) from exc
            except httpx.HTTPError as exc:
                log.warning(
                    "upstream call failed",
                    extra={"upstream": upstream, "error": type(exc).__name__},
                )
                raise _translate(exc, upstream) from exc
        raw_headers = [(n.lower(), v) for n, v in response.headers.raw]
        if small_body(raw_headers):
            # Known to be small: one read is cheaper than a streaming response's machinery.
            content = b"".join([chunk async for chunk in self._relay(response, upstream)])
            return UpstreamResponse(response.status_code, raw_headers, _nothing(), _noop, content)
        return UpstreamResponse(
            status=response.status_code,
            raw_headers=raw_headers,
            body=self._relay(response, upstream),
            close=response.aclose,
        )

    async def _relay(self, response: httpx.Response, upstream: str) -> AsyncIterator[bytes]:
        try:
            async for chunk in response.aiter_raw():
                yield chunk
        except httpx.HTTPError as exc:
            # Headers are already sent: all we can do is cut the connection so the client
            # sees an incomplete body rather than a silently truncated one.
            log.warning(
                "upstream response broken mid-stream",
                extra={"upstream": upstream, "error": type(exc).__name__},
            )
            raise
        finally:
            await response.aclose()

    async def aclose(self) -> None:
        if self.replicas is not None:
            await self.replicas.aclose()

    async def get_json(self, url: str, *, seconds: float) -> Any:
        response = await self.client.get(url, timeout=seconds)
        response.raise_for_status()
        return response.json()


async def _once(body: bytes) -> AsyncIterator[bytes]:
    yield body
