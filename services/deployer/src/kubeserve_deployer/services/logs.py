"""Use case: read a deployment's replica logs, for its owner only (another tenant's deployment
is a 404, like every other deployment route)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from uuid import UUID

from kubeserve_common.errors import NotFound

from kubeserve_deployer.adapters.logs import LogSource
from kubeserve_deployer.domain.logs import LogLine, LogQuery
from kubeserve_deployer.services.deployments import DeploymentService


class LogService:
    def __init__(self, deployments: DeploymentService, source: LogSource) -> None:
        self.deployments = deployments
        self.source = source

    async def open(
        self, owner_id: UUID, deployment_id: UUID, query: LogQuery
    ) -> AsyncIterator[LogLine | None]:
        """The selected replicas' lines (`None`: an idle tick while following). Ownership and
        the replica are checked before the first line, so those errors are proper answers."""
        await self.deployments.get(owner_id, deployment_id)
        available = await self.source.replicas(owner_id, deployment_id)
        if query.replica is None:
            chosen = available
        elif query.replica in available:
            chosen = [query.replica]
        else:
            listed = ", ".join(map(str, available)) or "none yet"
            raise NotFound(
                f"replica {query.replica} of deployment {deployment_id} has no logs "
                f"(replicas with logs: {listed})"
            )
        return self.source.stream(owner_id, deployment_id, chosen, query)
