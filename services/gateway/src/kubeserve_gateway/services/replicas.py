"""Which replica serves a prediction: the deployment's ready endpoints from the deployer, cached
for a short TTL, owner-checked, handed out round-robin (the gateway tries the next one when a
replica refuses the connection)."""

from __future__ import annotations

import itertools
import time
from uuid import UUID

from kubeserve_common.errors import NotFound
from kubeserve_common.security.principal import Principal

from kubeserve_gateway.adapters.deployer import DeployerPort, DeployerUnavailable, DeploymentRoute
from kubeserve_gateway.domain.errors import UpstreamUnavailable
from kubeserve_gateway.domain.routes import RouteMatch

RETRY_AFTER = {"Retry-After": "2"}


class ReplicaResolver:
    failover = True

    def __init__(
        self, deployer: DeployerPort, *, ttl: float = 1.0, max_entries: int = 10_000
    ) -> None:
        self.deployer = deployer
        self.ttl = ttl
        self.max_entries = max_entries
        self._routes: dict[str, tuple[float, DeploymentRoute | None]] = {}
        self._turn = itertools.count()

    async def candidates(self, match: RouteMatch, principal: Principal | None) -> list[str]:
        deployment_id = match.deployment_id
        if deployment_id is None or principal is None:
            raise NotFound("deployment not found")
        route = await self._route(deployment_id)
        # Another tenant's deployment is indistinguishable from a missing one.
        if route is None or route.owner_id != principal.user_id:
            raise NotFound(f"deployment {deployment_id} not found")
        if not route.endpoints:
            raise UpstreamUnavailable(
                f"deployment {deployment_id} has no ready replica (status {route.status}); "
                "retry shortly",
                headers=RETRY_AFTER,
            )
        start = next(self._turn) % len(route.endpoints)
        return list(route.endpoints[start:] + route.endpoints[:start])

    def forget(self, deployment_id: str) -> None:
        """After a replica refused a connection: look the route up afresh next time."""
        self._routes.pop(deployment_id, None)

    async def _route(self, deployment_id: str) -> DeploymentRoute | None:
        try:
            UUID(deployment_id)
        except ValueError:
            return None
        now = time.monotonic()
        cached = self._routes.get(deployment_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        try:
            route = await self.deployer.route(deployment_id)
        except DeployerUnavailable as exc:
            raise UpstreamUnavailable(
                "the deployer is unavailable; try again shortly", headers=RETRY_AFTER
            ) from exc
        if len(self._routes) >= self.max_entries:
            self._routes.clear()
        self._routes[deployment_id] = (now + self.ttl, route)
        return route
