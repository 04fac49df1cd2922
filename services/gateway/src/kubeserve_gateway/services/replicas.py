"""Which replica serves a prediction: the deployment's ready endpoints from the deployer, cached
for a short TTL, owner-checked, handed out round-robin (the gateway tries the next one when a
replica refuses the connection).

Lookups are single-flight per deployment (concurrent misses share one call to the deployer:
without that, every request arriving while a lookup is slow under load asks again, and the
lookups pile up), and an entry in the last quarter of its TTL is refreshed in the background
while requests keep using it - so requests rarely wait for the deployer.

The data plane outlives the control plane: deployment events (ready, scaled, failed, deleted)
push into the table as they happen, lookups refresh it, and while the deployer (or its
database) cannot answer, the last known route keeps serving for up to `max_stale` seconds
since it was last confirmed. A deleted deployment stops at once on its event, or at the next
successful lookup (within the TTL)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Callable
from uuid import UUID

from kubeserve_common.caching import Lru
from kubeserve_common.contracts.deployer import DeploymentRoute
from kubeserve_common.errors import NotFound
from kubeserve_common.events.envelope import CloudEvent
from kubeserve_common.security.principal import Principal

from kubeserve_gateway.adapters.deployer import DeployerPort, DeployerUnavailable
from kubeserve_gateway.domain.errors import NoReadyReplica, UpstreamUnavailable, WakeBlocked
from kubeserve_gateway.domain.routes import RouteMatch
from kubeserve_gateway.metrics import STALE_ROUTES
from kubeserve_gateway.services.load import ScaledToZero

RETRY_AFTER = {"Retry-After": "2"}

# The deployment events that change a route: what the gateway subscribes to.
ROUTE_EVENTS = (
    "io.kubeserve.deployment.ready.v1",
    "io.kubeserve.deployment.scaled.v1",
    "io.kubeserve.deployment.autoscaled.v1",
    "io.kubeserve.deployment.failed.v1",
    "io.kubeserve.deployment.undeploy_requested.v1",
    "io.kubeserve.deployment.deleted.v1",
)

log = logging.getLogger(__name__)


class ReplicaResolver:
    failover = True

    def __init__(
        self,
        deployer: DeployerPort,
        *,
        ttl: float = 1.0,
        max_stale: float = 900.0,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.deployer = deployer
        self.ttl = ttl
        self.max_stale = max_stale
        self.max_entries = max_entries
        self._clock = clock
        self._routes: Lru[str, tuple[float, DeploymentRoute | None]] = Lru(max_entries)
        # The last answer known good per deployment and when it was confirmed: what serves
        # while the deployer is away. Kept when an entry is forgotten or expires.
        self._known: Lru[str, tuple[float, DeploymentRoute | None]] = Lru(max_entries)
        self._degraded = False
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
        if not route.endpoints and route.wake_blocked:
            raise WakeBlocked(route.wake_blocked, headers={"Retry-After": "10"})
        if not route.endpoints and route.scaled_to_zero:
            raise ScaledToZero(
                f"deployment {deployment_id} is scaled to zero; a replica is starting",
                headers=RETRY_AFTER,
            )
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
        self._routes.pop(deployment_id)
        # A lookup already under way may predate the refusal: the next request starts afresh.
        self._inflight.pop(deployment_id, None)

    async def handle_event(self, event: CloudEvent) -> None:
        """The bus handler for ROUTE_EVENTS (a transient queue per gateway process): a ready
        deployment's endpoints are stored as they are announced, a deleted one is gone at
        once, and any other change makes the next request look the route up."""
        deployment_id = str(event.data.get("deployment_id", ""))
        if deployment_id not in self._routes and deployment_id not in self._known:
            return  # never asked for here: the first request looks it up
        now = self._clock()
        if event.type == "io.kubeserve.deployment.ready.v1":
            try:
                route: DeploymentRoute | None = DeploymentRoute.model_validate(
                    {**event.data, "status": "Running"}
                )
            except ValueError:  # pydantic's ValidationError
                log.info("ignored a malformed deployment event", extra={"event_id": event.id})
                return
        elif event.type == "io.kubeserve.deployment.deleted.v1":
            route = None
        else:
            self.forget(deployment_id)
            return
        self._inflight.pop(deployment_id, None)  # an answer under way may predate the event
        self._store(deployment_id, route, confirmed=now, fresh_until=now + self.ttl)

    async def _route(self, deployment_id: str) -> DeploymentRoute | None:
        now = self._clock()
        cached = self._routes.get(deployment_id)  # only ids that were valid are ever kept
        if cached is not None and cached[0] > now:
            if cached[0] - now < self.ttl / 4 and deployment_id not in self._inflight:
                self._lookup(deployment_id).add_done_callback(_consume)  # refresh ahead
            return cached[1]
        try:
            UUID(deployment_id)
        except ValueError:
            return None
        known = self._known.get(deployment_id)
        if self._degraded and known is not None and now - known[0] <= self.max_stale:
            # The deployer has been failing: do not make requests wait for a lookup that is
            # likely to time out; serve the last known route and ask behind the request.
            if deployment_id not in self._inflight:
                self._lookup(deployment_id).add_done_callback(_consume)
            return known[1]
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
        started = self._clock()
        try:
            route = await self.deployer.route(deployment_id)
        except DeployerUnavailable as exc:
            return self._last_known(deployment_id, started, exc)
        if self._degraded:
            self._degraded = False
            log.warning("the deployer answers route lookups again")
        if self._inflight.get(deployment_id) is not asyncio.current_task():
            return route  # forgotten meanwhile (a replica refused): do not cache this answer
        # Valid for `ttl` from when it was asked, like an answer fetched in the request.
        self._store(deployment_id, route, confirmed=started, fresh_until=started + self.ttl)
        return route

    def _last_known(
        self, deployment_id: str, now: float, exc: DeployerUnavailable
    ) -> DeploymentRoute | None:
        known = self._known.get(deployment_id)
        if known is None or now - known[0] > self.max_stale:
            raise UpstreamUnavailable(
                "the deployer is unavailable; try again shortly", headers=RETRY_AFTER
            ) from exc
        if not self._degraded:
            self._degraded = True  # one line per outage, not one per lookup
            log.warning(
                "the deployer cannot answer route lookups; serving the last known routes "
                "(for up to %.0f s each)",
                self.max_stale,
                extra={"error": str(exc)},
            )
        STALE_ROUTES.inc()
        # Ask again after a TTL, not on every request, while it is away.
        self._routes.put(deployment_id, (now + self.ttl, known[1]))
        return known[1]

    def _store(
        self,
        deployment_id: str,
        route: DeploymentRoute | None,
        *,
        confirmed: float,
        fresh_until: float,
    ) -> None:
        self._routes.put(deployment_id, (fresh_until, route))
        self._known.put(deployment_id, (confirmed, route))


def _consume(task: asyncio.Task[object]) -> None:
    """A background refresh that failed: the cached entry serves until it expires, then a
    request's own lookup reports the error."""
    if not task.cancelled() and task.exception() is not None:
        with contextlib.suppress(Exception):
            log.info("background route refresh failed", extra={"error": str(task.exception())})
