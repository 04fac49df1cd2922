"""What the local backend reports about a deployment besides its replicas: revisions that can
never start (fatal), the last cold start's timings and the activity events since the last
observation (the deployer records them in the deployment's activity)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from uuid import UUID

from kubeserve_deployer.backends.local.state import Replica
from kubeserve_deployer.domain.deployments import DeploymentObservation, ReplicaStatus

# A day: no honest start phase takes longer.
_MAX_MS = 86_400_000.0


class Activity:
    def __init__(self) -> None:
        self.fatal: dict[tuple[UUID, int], str] = {}
        self.cold_start: dict[tuple[UUID, int], dict[str, float]] = {}
        self._events: dict[UUID, list[tuple[str, str]]] = {}

    def event(self, deployment_id: UUID, kind: str, message: str) -> None:
        self._events.setdefault(deployment_id, []).append((kind, message))

    def forget(self, deployment_id: UUID) -> None:
        for key in [k for k in self.fatal if k[0] == deployment_id]:
            del self.fatal[key]
        for key in [k for k in self.cold_start if k[0] == deployment_id]:
            del self.cold_start[key]
        self._events.pop(deployment_id, None)

    def record_cold_start(
        self, r: Replica, first_health_s: float, child: dict[str, object]
    ) -> dict[str, float]:
        """The phases of `r`'s start (ms): fetch, spawn, first health, and what the replica
        itself measured (`child`: its timings file). The replica writes that file through a
        descriptor it holds while the tenant's code loads: only finite, non-negative numbers
        are taken (a NaN would be refused by PostgreSQL's JSON and fail every later pass)."""
        timings = dict(r.timings)
        timings["first_health_ms"] = first_health_s * 1000
        for name in ("load_ms", "app_ms"):
            value = child.get(name)
            if (
                isinstance(value, int | float)
                and not isinstance(value, bool)
                and math.isfinite(value)
                and 0 <= value <= _MAX_MS
            ):
                timings[f"model_{name}" if name == "load_ms" else name] = float(value)
        timings["total_ms"] = sum(
            timings.get(k, 0.0) for k in ("fetch_ms", "spawn_ms", "first_health_ms")
        )
        self.cold_start[(r.deployment_id, r.revision)] = {
            k: round(v, 2) for k, v in timings.items()
        }
        return timings

    def observation(
        self, deployment_id: UUID, replicas: Iterable[Replica]
    ) -> DeploymentObservation:
        """The deployment's observation; hands over (and clears) its pending events."""
        mine = [r for r in replicas if r.deployment_id == deployment_id]
        obs = DeploymentObservation(deployment_id=deployment_id)
        obs.replicas = [r.view() for r in sorted(mine, key=lambda r: (r.revision, r.index))]
        for r in mine:
            if not r.ever_ready and r.failures:
                obs.start_failures[r.revision] = max(
                    obs.start_failures.get(r.revision, 0), r.failures
                )
            if r.last_error and r.status is ReplicaStatus.CRASHED:
                obs.last_error[r.revision] = r.last_error
        for (dep, revision), message in self.fatal.items():
            if dep == deployment_id:
                obs.fatal[revision] = message
        for (dep, revision), timings in self.cold_start.items():
            if dep == deployment_id:
                obs.cold_start[revision] = timings
        obs.events = self._events.pop(deployment_id, [])
        return obs
