"""The gateway's one pooled HTTP client and the streaming upstream calls made with it.
httpx errors are translated here into the gateway's 502/503/504 errors."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx

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


@dataclass
class UpstreamResponse:
    status: int
    headers: Headers
    body: AsyncIterator[bytes]
    _response: httpx.Response

    async def close(self) -> None:
        await self._response.aclose()


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

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def send(
        self,
        upstream: str,
        method: str,
        url: str,
        headers: Headers,
        body: AsyncIterable[bytes] | None,
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
        return UpstreamResponse(
            status=response.status_code,
            headers=list(response.headers.multi_items()),
            body=self._relay(response, upstream),
            _response=response,
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

    async def get_json(self, url: str, *, seconds: float) -> Any:
        response = await self.client.get(url, timeout=seconds)
        response.raise_for_status()
        return response.json()
