"""Which replica serves a prediction: the deployment's ready endpoints from the deployer, cached
for a short TTL, owner-checked, handed out round-robin (the gateway tries the next one when a
replica refuses the connection).

Lookups are single-flight per deployment (concurrent misses share one call to the deployer:
without that, every request arriving while a lookup is slow under load asks again, and the
lookups pile up), and an entry in the last quarter of its TTL is refreshed in the background
while requests keep using it - so requests rarely wait for the deployer, and never use an
answer older than the TTL."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from uuid import UUID

from kubeserve_common.errors import NotFound
from kubeserve_common.security.principal import Principal

from kubeserve_gateway.adapters.deployer import DeployerPort, DeployerUnavailable, DeploymentRoute
from kubeserve_gateway.domain.errors import NoReadyReplica, UpstreamUnavailable
from kubeserve_gateway.domain.routes import RouteMatch

RETRY_AFTER = {"Retry-After": "2"}

log = logging.getLogger(__name__)


class ReplicaResolver:
    failover = True

    def __init__(
        self, deployer: DeployerPort, *, ttl: float = 1.0, max_entries: int = 10_000
    ) -> None:
        self.deployer = deployer
        self.ttl = ttl
        self.max_entries = max_entries
        self._routes: dict[str, tuple[float, DeploymentRoute | None]] = {}
        self._inflight: dict[str, asyncio.Task[DeploymentRoute | None]] = {}
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
            raise NoReadyReplica(
                f"deployment {deployment_id} has no ready replica (status {route.status}); "
                "retry shortly",
                headers=RETRY_AFTER,
            )
        start = next(self._turn) % len(route.endpoints)
        return list(route.endpoints[start:] + route.endpoints[:start])

    def forget(self, deployment_id: str) -> None:
        """After a replica refused a connection: look the route up afresh next time."""
        self._routes.pop(deployment_id, None)
        # A lookup already under way may predate the refusal: the next request starts afresh.
        self._inflight.pop(deployment_id, None)

    async def _route(self, deployment_id: str) -> DeploymentRoute | None:
        try:
            UUID(deployment_id)
        except ValueError:
            return None
        now = time.monotonic()
        cached = self._routes.get(deployment_id)
        if cached is not None and cached[0] > now:
            if cached[0] - now < self.ttl / 4 and deployment_id not in self._inflight:
                self._lookup(deployment_id).add_done_callback(_consume)  # refresh ahead
            return cached[1]
        return await asyncio.shield(self._lookup(deployment_id))

    def _lookup(self, deployment_id: str) -> asyncio.Task[DeploymentRoute | None]:
        task = self._inflight.get(deployment_id)
        if task is None:
            fresh = asyncio.ensure_future(self._fetch(deployment_id))
            self._inflight[deployment_id] = fresh

            def done(_: object, fresh: asyncio.Task[DeploymentRoute | None] = fresh) -> None:
                if self._inflight.get(deployment_id) is fresh:
                    del self._inflight[deployment_id]

            fresh.add_done_callback(done)
            return fresh
        return task

    async def _fetch(self, deployment_id: str) -> DeploymentRoute | None:
        started = time.monotonic()
        try:
            route = await self.deployer.route(deployment_id)
        except DeployerUnavailable as exc:
            raise UpstreamUnavailable(
                "the deployer is unavailable; try again shortly", headers=RETRY_AFTER
            ) from exc
        if self._inflight.get(deployment_id) is not asyncio.current_task():
            return route  # forgotten meanwhile (a replica refused): do not cache this answer
        if len(self._routes) >= self.max_entries:
            self._routes.clear()
        # Valid for `ttl` from when it was asked, like an answer fetched in the request.
        self._routes[deployment_id] = (started + self.ttl, route)
        return route


def _consume(task: asyncio.Task[object]) -> None:
    """A background refresh that failed: the cached entry serves until it expires, then a
    request's own lookup reports the error."""
    if not task.cancelled() and task.exception() is not None:
        with contextlib.suppress(Exception):
            log.info("background route refresh failed", extra={"error": str(task.exception())})
