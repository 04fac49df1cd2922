"""Prometheus discovery through the gateway: the scrape targets of the platform's processes and
of every ready replica, in Prometheus's http_sd format, and the replicas' `/metrics` relayed by
the gateway (local replicas serve on Unix sockets Prometheus cannot reach).

Replicas come from the deployer (`/internal/serving`), cached for `ttl` seconds; when the
deployer cannot answer, the last known list keeps serving (the data plane outlives the control
plane), and before any answer only the platform's own targets are listed."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from kubeserve_common.contracts.deployer import ServingDeployment
from kubeserve_common.errors import NotFound

from kubeserve_gateway.adapters.deployer import DeployerUnavailable
from kubeserve_gateway.adapters.replica_http import ReplicaPool, translate
from kubeserve_gateway.domain.errors import UpstreamUnavailable

log = logging.getLogger(__name__)

REPLICA_METRICS_PATH = "/internal/prometheus/replicas/{deployment_id}/{replica}/metrics"
PLATFORM_SERVICES = ("gateway", "auth", "registry", "builder", "deployer")


def replica_key(endpoint: str) -> str:
    """A stable, opaque name of one replica (its endpoint, hashed: no socket path leaks)."""
    return hashlib.sha256(endpoint.encode()).hexdigest()[:12]


def _address(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.hostname}:{port}", parts.scheme or "http"


class PrometheusDiscovery:
    def __init__(
        self,
        *,
        service_urls: dict[str, str],
        scrape_address: str | None,
        single_process: bool,
        fetch_serving: Callable[[], Awaitable[list[ServingDeployment]]],
        replicas: ReplicaPool | None,
        ttl: float = 5.0,
    ) -> None:
        self.service_urls = service_urls
        gateway_address, scheme = _address(service_urls["gateway"])
        self.gateway_address = scrape_address or gateway_address
        self.gateway_scheme = scheme
        self.single_process = single_process
        self.fetch_serving = fetch_serving
        self.replicas = replicas
        self.ttl = ttl
        self._serving: list[ServingDeployment] = []
        self._fetched_at = float("-inf")

    def platform_targets(self) -> list[dict[str, Any]]:
        if self.single_process:
            # Every service of the embedded mode shares this process and its one registry:
            # one target, or Prometheus would store five copies of every series.
            return [self._group(self.gateway_address, self.gateway_scheme, "platform", "/metrics")]
        groups = []
        for name in PLATFORM_SERVICES:
            address, scheme = _address(self.service_urls[name])
            if name == "gateway":
                address = self.gateway_address
            groups.append(self._group(address, scheme, name, "/metrics"))
        return groups

    async def targets(self) -> list[dict[str, Any]]:
        groups = self.platform_targets()
        for serving in await self._current(force=False):
            for endpoint in serving.endpoints:
                key = replica_key(endpoint)
                path = REPLICA_METRICS_PATH.format(deployment_id=serving.deployment_id, replica=key)
                group = self._group(self.gateway_address, self.gateway_scheme, "runtime", path)
                group["labels"].update(
                    tenant=str(serving.owner_id),
                    deployment=str(serving.deployment_id),
                    deployment_name=serving.name,
                    version=serving.version,
                    replica=key,
                )
                groups.append(group)
        return groups

    async def replica_metrics(self, deployment_id: str, replica: str) -> bytes:
        endpoint = self._find(deployment_id, replica) or self._find(
            deployment_id, replica, await self._current(force=True)
        )
        if endpoint is None:
            raise NotFound(f"no ready replica {replica} of deployment {deployment_id}")
        if self.replicas is None:
            raise UpstreamUnavailable("replica metrics need the gateway's replica pool")
        try:
            response = await self.replicas.request("GET", f"{endpoint}/metrics", [], None)
            body = await response.read()
        except Exception as exc:
            raise translate(exc, "runtime") from exc
        if response.status != 200:
            raise UpstreamUnavailable(f"replica {replica} answered {response.status} for /metrics")
        return body

    def _find(
        self, deployment_id: str, replica: str, serving: list[ServingDeployment] | None = None
    ) -> str | None:
        for item in self._serving if serving is None else serving:
            if str(item.deployment_id) == deployment_id:
                for endpoint in item.endpoints:
                    if replica_key(endpoint) == replica:
                        return endpoint
        return None

    async def _current(self, *, force: bool) -> list[ServingDeployment]:
        now = time.monotonic()
        if not force and now - self._fetched_at < self.ttl:
            return self._serving
        try:
            self._serving = await self.fetch_serving()
        except DeployerUnavailable as exc:
            log.warning(
                "replica discovery: the deployer cannot answer; listing the last known replicas",
                extra={"error": str(exc)},
            )
        self._fetched_at = now
        return self._serving

    @staticmethod
    def _group(address: str, scheme: str, service: str, path: str) -> dict[str, Any]:
        return {
            "targets": [address],
            "labels": {"service": service, "__metrics_path__": path, "__scheme__": scheme},
        }
