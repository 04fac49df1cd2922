"""The gateway's port to the deployer: where a deployment's ready replicas listen, which
deployments serve (for the Prometheus discovery), and the load it reports. The bodies are the
shared contract of `kubeserve_common.contracts.deployer`."""

from __future__ import annotations

from typing import Protocol

from kubeserve_common.contracts.deployer import DeploymentRoute, LoadReport, ServingDeployment
from pydantic import TypeAdapter, ValidationError

from kubeserve_gateway.adapters.internal import InternalClient


class DeployerUnavailable(Exception):
    """The deployer could not be asked (down, timeout, unexpected answer)."""


class DeployerPort(Protocol):
    async def route(self, deployment_id: str) -> DeploymentRoute | None:
        """None when the deployment does not exist (or was deleted)."""
        ...


_ROUTE = TypeAdapter(DeploymentRoute)
_SERVING = TypeAdapter(list[ServingDeployment])


class HttpDeployerClient(InternalClient):
    unavailable = DeployerUnavailable

    async def route(self, deployment_id: str) -> DeploymentRoute | None:
        what = "route lookup"
        response = await self._call(what, "GET", f"/internal/deployments/{deployment_id}/route")
        if response.status_code in (404, 422):
            return None
        return self._parse(what, response, _ROUTE)

    async def report_load(self, gateway: str, in_flight: dict[str, float]) -> None:
        """The autoscaler's signal: predictions in flight per deployment (services/load.py)."""
        try:
            report = LoadReport.model_validate({"gateway": gateway, "in_flight": in_flight})
        except ValidationError as exc:
            raise DeployerUnavailable(f"load report not sent: {exc.errors()[0]['msg']}") from exc
        what = "load report"
        response = await self._call(
            what, "POST", "/internal/load", body=report.model_dump(mode="json")
        )
        self._expect(what, response, 204)

    async def serving_deployments(self) -> list[ServingDeployment]:
        """Every live deployment with ready replicas (`GET /internal/serving`)."""
        what = "serving lookup"
        return self._parse(what, await self._call(what, "GET", "/internal/serving"), _SERVING)
