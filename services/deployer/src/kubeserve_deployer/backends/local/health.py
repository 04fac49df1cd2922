"""Health checks of replicas (`GET /v2/health/ready`), over TCP or over a contained replica's
Unix socket (`unix:/path` endpoints: one pooled client per socket, as the gateway does)."""

from __future__ import annotations

import httpx


class HealthChecker:
    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._tcp: httpx.AsyncClient | None = None
        self._uds: dict[str, httpx.AsyncClient] = {}

    def _client(self, endpoint: str) -> tuple[httpx.AsyncClient, str]:
        if endpoint.startswith("unix:"):
            path = endpoint.removeprefix("unix:")
            client = self._uds.get(path)
            if client is None:
                transport = httpx.AsyncHTTPTransport(uds=path)
                client = httpx.AsyncClient(
                    transport=transport, timeout=self.timeout, trust_env=False
                )
                self._uds[path] = client
            return client, "http://replica"
        if self._tcp is None:
            self._tcp = httpx.AsyncClient(timeout=self.timeout, trust_env=False)
        return self._tcp, endpoint

    async def healthy(self, endpoint: str | None) -> bool:
        if not endpoint:
            return False
        client, base = self._client(endpoint)
        try:
            response = await client.get(f"{base}/v2/health/ready")
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    async def forget(self, endpoint: str | None) -> None:
        """Close the pooled client of a replica that is gone."""
        if endpoint and endpoint.startswith("unix:"):
            client = self._uds.pop(endpoint.removeprefix("unix:"), None)
            if client is not None:
                await client.aclose()

    async def close(self) -> None:
        for client in [*self._uds.values(), *([self._tcp] if self._tcp else [])]:
            await client.aclose()
        self._uds.clear()
        self._tcp = None
