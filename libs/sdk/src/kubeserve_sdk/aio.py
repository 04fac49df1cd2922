"""`AsyncClient`: `Client`'s methods for asyncio. Both run the `Operations` of `_api.py`; this
module is the asyncio transport."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx

from kubeserve_sdk import models as m
from kubeserve_sdk._api import PAGE, LogStream, Operations, stream_error
from kubeserve_sdk._calls import LogEntry
from kubeserve_sdk._engine import AsyncDriver
from kubeserve_sdk._transport import transport_error


class AsyncClient(Operations[Callable[[float], Awaitable[None]]], AsyncDriver):
    """`Client`'s methods, awaitable (`logs` and `iter_models` are async iterators)."""

    def _open(self, timeout: float, sleep: Callable[[float], Awaitable[None]] | None) -> None:
        self._sleep = sleep or asyncio.sleep
        self._http = httpx.AsyncClient(base_url=self.base_url, timeout=timeout)

    async def close(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def iter_models(self) -> AsyncIterator[m.ModelRead]:
        offset = 0
        while page := await self.list_models(limit=PAGE, offset=offset):
            for model in page:
                yield model
            offset += len(page)
            if len(page) < PAGE:
                return

    async def logs(
        self,
        deployment_id: str,
        *,
        follow: bool = False,
        replica: int | None = None,
        since: str | None = None,
        tail: int | None = None,
    ) -> AsyncIterator[LogEntry]:
        """The replicas' log lines as they come (with `follow`, until you stop iterating)."""
        connect = self._http.timeout.connect
        url, kwargs = self._logs_request(deployment_id, follow, replica, since, tail, connect)
        try:
            async with self._http.stream("GET", url, **kwargs) as response:
                if response.is_error:
                    await response.aread()
                    raise stream_error(response)
                stream = LogStream()
                async for line in response.aiter_lines():
                    if entry := stream.feed(line):
                        yield entry
                    elif stream.done:
                        return
        except httpx.TransportError as exc:
            raise transport_error(exc, self.base_url) from exc
