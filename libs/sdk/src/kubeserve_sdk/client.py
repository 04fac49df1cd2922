"""`Client`: the synchronous client of the gateway's `/api/v1` (httpx). Its methods are the
`Operations` of `_api.py`, shared with `AsyncClient` (aio.py); this module is the transport."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import httpx

from kubeserve_sdk import models as m
from kubeserve_sdk._api import PAGE, LogStream, Operations, stream_error
from kubeserve_sdk._calls import LogEntry
from kubeserve_sdk._engine import SyncDriver
from kubeserve_sdk._transport import transport_error


class Client(Operations[Callable[[float], None]], SyncDriver):
    """The synchronous client (see `__init__` for credentials, URL and retries)."""

    def _open(self, timeout: float, sleep: Callable[[float], None] | None) -> None:
        self._sleep = sleep or time.sleep
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def iter_models(self) -> Iterator[m.ModelRead]:
        offset = 0
        while page := self.list_models(limit=PAGE, offset=offset):
            yield from page
            offset += len(page)
            if len(page) < PAGE:
                return

    def logs(
        self,
        deployment_id: str,
        *,
        follow: bool = False,
        replica: int | None = None,
        since: str | None = None,
        tail: int | None = None,
    ) -> Iterator[LogEntry]:
        """The replicas' log lines as they come (with `follow`, until you stop iterating)."""
        connect = self._http.timeout.connect
        url, kwargs = self._logs_request(deployment_id, follow, replica, since, tail, connect)
        try:
            with self._http.stream("GET", url, **kwargs) as response:
                if response.is_error:
                    response.read()
                    raise stream_error(response)
                stream = LogStream()
                for line in response.iter_lines():
                    if entry := stream.feed(line):
                        yield entry
                    elif stream.done:
                        return
        except httpx.TransportError as exc:
            raise transport_error(exc, self.base_url) from exc
