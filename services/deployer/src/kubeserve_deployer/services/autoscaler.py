"""The autoscaler loop (issue 12.2): gateways report the requests in flight per deployment,
the loop feeds each autoscaled deployment's `Autoscaler` (domain/autoscaling.py) once per tick
and writes its decisions - the desired replica count, an activity line ("scaled 1 -> 3: 7.5 in
flight, target 2") and a `DeploymentAutoscaled` event, in one transaction - then wakes the
reconcile loop, which converges the backend to the new count.

The signal lives in memory (`LoadBoard`): it is a second-by-second measurement, not state; a
deployer restart starts from zero load, which is what a fresh autoscaler would assume anyway.
Several gateways report separately and their figures add up; a gateway that stops reporting
(it only reports non-zero or changed figures) counts as zero after `stale_after` seconds.

It drives the replica count for backends that do not scale by themselves (the local backend);
on Kubernetes the HPA rendered from the same settings does (backends/kubernetes/release.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from uuid import UUID

from kubeserve_common.db.base import utcnow
from kubeserve_common.db.uow import UnitOfWorkFactory
from kubeserve_common.events.catalog import DeploymentAutoscaled
from kubeserve_common.waiting import Backoff, Pace, cancel_and_wait, run_loop
from kubeserve_common.web.outages import log_loop_failure
from pydantic import BaseModel, ConfigDict, Field

from kubeserve_deployer.domain.autoscaling import (
    Autoscaler,
    AutoscalerTuning,
    AutoscalingPolicy,
    Decision,
    policy_from,
)
from kubeserve_deployer.domain.deployments import DeploymentStatus, Quota
from kubeserve_deployer.repositories.deployments import DeploymentRepository, EventRepository
from kubeserve_deployer.repositories.orm import DeploymentRecord
from kubeserve_deployer.services.deployments import event_for

log = logging.getLogger(__name__)


class LoadBoard:
    """The latest in-flight figure per (gateway, deployment)."""

    def __init__(
        self, *, stale_after: float = 5.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.stale_after = stale_after
        self._clock = clock
        self._figures: dict[tuple[str, UUID], tuple[float, float]] = {}
        self.on_wake: Callable[[], None] = lambda: None

    def report(self, gateway: str, in_flight: Mapping[UUID, float]) -> None:
        now = self._clock()
        wake = False
        for deployment_id, value in in_flight.items():
            key = (gateway, deployment_id)
            previous = self._figures.get(key)
            if value > 0 and (previous is None or previous[1] == 0):
                wake = True  # load where there was none (maybe a deployment at zero): act now
            self._figures[key] = (now, max(0.0, value))
        if len(self._figures) > 100_000:
            self._expire(now)
        if wake:
            self.on_wake()

    def in_flight(self) -> dict[UUID, float]:
        now = self._clock()
        self._expire(now)
        totals: dict[UUID, float] = {}
        for (_, deployment_id), (_, value) in self._figures.items():
            totals[deployment_id] = totals.get(deployment_id, 0.0) + value
        return totals

    def _expire(self, now: float) -> None:
        for key in [k for k, (at, _) in self._figures.items() if now - at > self.stale_after]:
            del self._figures[key]


IDLE_MAX = 30.0  # seconds between ticks, at most, while no deployment is autoscaled


class AutoscalerSettings(BaseModel):
    """`DeployerSettings.autoscale`, read as `KUBESERVE_AUTOSCALE_<FIELD>`: the loop's period
    and the platform-wide windows of every deployment's `Autoscaler`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    interval: float = Field(default=1.0, gt=0, description="Seconds between autoscaler decisions.")
    stable_window: float = Field(
        default=60.0, gt=0, description="Seconds of load averaged for a steady decision."
    )
    panic_window: float = Field(
        default=6.0, gt=0, description="Seconds averaged to react to a burst (panic mode)."
    )
    scale_down_delay: float = Field(
        default=60.0, ge=0, description="A scale-down waits this long for load to stay low."
    )
    scale_to_zero_after: float = Field(
        default=300.0,
        gt=0,
        description="Idle seconds before 0 replicas when a deployment sets min_replicas 0 "
        "without scale_to_zero_after_s.",
    )

    def tuning(self) -> AutoscalerTuning:
        """The domain's windows; a panic window longer than the stable one is cut to it."""
        return AutoscalerTuning(
            stable_window=self.stable_window,
            panic_window=min(self.panic_window, self.stable_window),
            scale_down_delay=self.scale_down_delay,
            default_scale_to_zero_after=self.scale_to_zero_after,
        )


class AutoscalerService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        quota: Quota,
        board: LoadBoard,
        config: AutoscalerSettings,
        *,
        on_change: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.uow = uow
        self.quota = quota
        self.board = board
        self.config = config
        self.tuning = config.tuning()
        self.on_change = on_change
        self._clock = clock
        self._scalers: dict[UUID, Autoscaler] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._watching = False  # the last tick saw autoscaled deployments
        board.on_wake = self._wake.set

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="autoscaler")

    def wake(self) -> None:
        """A deployment changed (created, its settings patched): look at once, so a new
        autoscaled deployment is watched from its first second, not after an idle backoff."""
        self._wake.set()

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)

    async def _run(self) -> None:
        # Ticks every `interval` while an autoscaled deployment exists (its windows need the
        # samples); with none it backs off to `idle_max`. Load where there was none wakes it.
        idle = Backoff(self.config.interval, IDLE_MAX)
        await run_loop(self._pass, idle, self._wake, on_failure=_tick_failed)

    async def _pass(self) -> Pace:
        await self.tick()
        return Pace(busy=self._watching)

    async def tick(self) -> list[tuple[UUID, Decision]]:
        """Observe every autoscaled deployment once and apply the decisions that change its
        replica count; returns those decisions."""
        now = self._clock()
        load = self.board.in_flight()
        async with self.uow.reading() as uow:
            rows = [
                d
                for d in await DeploymentRepository(uow.session).live()
                if d.autoscaling and not d.deleting and d.status != DeploymentStatus.FAILED.value
            ]
        self._watching = bool(rows)
        changes: list[tuple[UUID, Decision]] = []
        seen: set[UUID] = set()
        for d in rows:
            seen.add(d.id)
            scaler = self._scaler(d)
            scaler.observe(now, load.get(d.id, 0.0))
            decision = scaler.decide(now, d.ready_replicas, d.desired_replicas)
            if decision.desired != d.desired_replicas and await self._apply(d.id, decision):
                changes.append((d.id, decision))
        for gone in set(self._scalers) - seen:
            del self._scalers[gone]
        if changes:
            self.on_change()
        return changes

    def _scaler(self, d: DeploymentRecord) -> Autoscaler:
        policy = policy_from(d.autoscaling or {})
        scaler = self._scalers.get(d.id)
        if scaler is None or scaler.policy != policy:
            scaler = self._scalers[d.id] = Autoscaler(policy, self.tuning)
        return scaler

    async def _apply(self, deployment_id: UUID, decision: Decision) -> bool:
        async with self.uow() as uow:
            deployments = DeploymentRepository(uow.session)
            d = await deployments.get_live(deployment_id, for_update=True)
            if d is None or d.deleting or not d.autoscaling:
                return False
            await deployments.lock_owner(d.owner_id)
            policy: AutoscalingPolicy = policy_from(d.autoscaling)
            desired, reason = decision.desired, decision.reason
            if desired > d.desired_replicas:
                others = await deployments.replicas_in_use(d.owner_id, excluding=d.id)
                room = self.quota.headroom(others)
                if desired > room:
                    desired = max(d.desired_replicas, room)
                    reason += f"; held at {desired} by your quota"
            previous = d.desired_replicas
            if desired == previous:
                return False
            d.desired_replicas = desired
            d.updated_at = utcnow()
            in_flight = (
                decision.panic_concurrency if decision.panic else decision.stable_concurrency
            )
            target = policy.target_concurrency
            notes = ["panic"] if decision.panic else []
            notes += [part.strip() for part in reason.split(";")[1:]]
            message = (
                f"scaled {previous} -> {desired}: {in_flight:.1f} in flight, target {target:g}"
                + (f" ({', '.join(notes)})" if notes else "")
            )
            if desired == 0:
                message = f"scaled {previous} -> 0: {reason}"
            await EventRepository(uow.session).record(d.id, "autoscaled", message)
            await uow.publish(
                event_for(
                    DeploymentAutoscaled(
                        deployment_id=d.id,
                        owner_id=d.owner_id,
                        previous_replicas=previous,
                        replicas=desired,
                        in_flight=round(in_flight, 3),
                        target_concurrency=target,
                        panic=decision.panic,
                        reason=reason[:500],
                    ),
                    d.id,
                    d.owner_id,
                )
            )
            await uow.commit()
        log.info("autoscaled", extra={"deployment_id": str(deployment_id), "replicas": desired})
        return True


def _tick_failed(exc: Exception) -> Pace:
    log_loop_failure(log, "autoscaler tick failed", exc)
    return Pace(busy=True)  # retry at the normal pace
