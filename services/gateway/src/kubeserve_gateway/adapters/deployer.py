"""The gateway's port to the deployer: where a deployment's ready replicas listen."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol
from uuid import UUID

import httpx
from kubeserve_common.security.tokens import issue_internal_token


class DeployerUnavailable(Exception):
    """The deployer could not be asked (down, timeout, unexpected answer)."""


@dataclass(frozen=True)
class DeploymentRoute:
    deployment_id: UUID
    owner_id: UUID
    status: str
    endpoints: tuple[str, ...]
    scaled_to_zero: bool = False  # autoscaled to 0 replicas: a request is held, not refused
    wake_blocked: str | None = None  # ...unless the tenant's quota leaves no room to wake it


class DeployerPort(Protocol):
    async def route(self, deployment_id: str) -> DeploymentRoute | None:
        """None when the deployment does not exist (or was deleted)."""
        ...


class HttpDeployerClient:
    def __init__(
        self, client: httpx.AsyncClient, base_url: str, internal_secret: str, timeout: float
    ) -> None:
        self.client = client
        self.base_url = base_url.rstrip("/")
        self.internal_secret = internal_secret
        self.timeout = timeout

    async def route(self, deployment_id: str) -> DeploymentRoute | None:
        token = issue_internal_token(self.internal_secret, subject="service:gateway", claims={})
        try:
            response = await self.client.get(
                f"{self.base_url}/internal/deployments/{deployment_id}/route",
                headers={"authorization": f"Bearer {token}"},
                timeout=self.timeout,
            )
        except httpx.HTTPError as exc:
            raise DeployerUnavailable(f"route lookup failed: {type(exc).__name__}") from exc
        if response.status_code in (404, 422):
            return None
        if response.status_code != 200:
            raise DeployerUnavailable(f"route lookup answered {response.status_code}")
        try:
            data = response.json()
            return DeploymentRoute(
                deployment_id=UUID(str(data["deployment_id"])),
                owner_id=UUID(str(data["owner_id"])),
                status=str(data["status"]),
                endpoints=tuple(str(e).rstrip("/") for e in data.get("endpoints") or ()),
                scaled_to_zero=bool(data.get("scaled_to_zero", False)),
                wake_blocked=str(data["wake_blocked"]) if data.get("wake_blocked") else None,
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise DeployerUnavailable("route lookup answered an unexpected body") from exc

    async def report_load(self, gateway: str, in_flight: dict[str, float]) -> None:
        """The autoscaler's signal: predictions in flight per deployment (services/load.py)."""
        token = issue_internal_token(self.internal_secret, subject="service:gateway", claims={})
        response = await self.client.post(
            f"{self.base_url}/internal/load",
            json={"gateway": gateway, "in_flight": in_flight},
            headers={"authorization": f"Bearer {token}"},
            timeout=self.timeout,
        )
        if response.status_code != 204:
            raise DeployerUnavailable(f"load report answered {response.status_code}")


@dataclass(frozen=True)
class ServingDeployment:
    """A deployment with ready replicas, for the Prometheus discovery."""

    deployment_id: str
    owner_id: str
    name: str
    version: str
    endpoints: tuple[str, ...]


async def serving_deployments(deployer: HttpDeployerClient) -> list[ServingDeployment]:
    """Every live deployment with ready replicas (`GET /internal/serving` of the deployer)."""
    token = issue_internal_token(deployer.internal_secret, subject="service:gateway", claims={})
    try:
        response = await deployer.client.get(
            f"{deployer.base_url}/internal/serving",
            headers={"authorization": f"Bearer {token}"},
            timeout=deployer.timeout,
        )
    except httpx.HTTPError as exc:
        raise DeployerUnavailable(f"serving lookup failed: {type(exc).__name__}") from exc
    if response.status_code != 200:
        raise DeployerUnavailable(f"serving lookup answered {response.status_code}")
    try:
        return [
            ServingDeployment(
                deployment_id=str(UUID(str(item["deployment_id"]))),
                owner_id=str(UUID(str(item["owner_id"]))),
                name=str(item["name"]),
                version=str(item["version"]),
                endpoints=tuple(str(e).rstrip("/") for e in item.get("endpoints") or ()),
            )
            for item in response.json()
        ]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise DeployerUnavailable("serving lookup answered an unexpected body") from exc
