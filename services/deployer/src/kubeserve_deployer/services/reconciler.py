"""The reconcile loop: converges the runtime backend to what the deployments table asks for and
records what happened (status, ready replicas, endpoints, events, replica rows).

Level-triggered, like a Kubernetes controller: each pass reads every live deployment, hands the
desired state to the backend, then writes the observations back - one short transaction per
changed deployment, with its events (`DeploymentReady`, `DeploymentFailed`, `DeploymentDeleted`)
in the same transaction. Consumers and the API only wake it; a missed wake-up is repaired by
the next periodic pass, and a deployer restart simply starts passing again (the backend
re-adopts the replicas it finds).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from kubeserve_common.db.base import utcnow
from kubeserve_common.db.uow import UnitOfWork, UnitOfWorkFactory
from kubeserve_common.events.catalog import DeploymentDeleted, DeploymentFailed, DeploymentReady
from kubeserve_common.waiting import Backoff, Pace, cancel_and_wait, run_loop
from kubeserve_common.web.outages import log_loop_failure

from kubeserve_deployer.adapters.runtime_backend import RuntimeBackend
from kubeserve_deployer.domain.autoscaling import policy_from
from kubeserve_deployer.domain.cold_start import start_key
from kubeserve_deployer.domain.deployments import (
    DeploymentObservation,
    DeploymentSpec,
    DeploymentStatus,
    RevisionTarget,
)
from kubeserve_deployer.repositories.deployments import (
    DeploymentRepository,
    EventRepository,
    ReplicaRepository,
    RevisionRepository,
)
from kubeserve_deployer.repositories.orm import DeploymentRecord, ReplicaRecord, VersionProjection
from kubeserve_deployer.repositories.versions import VersionRepository
from kubeserve_deployer.services.cold_start import learn_start
from kubeserve_deployer.services.deployments import event_for

log = logging.getLogger(__name__)

_ROLLING_OUT = (DeploymentStatus.PENDING.value, DeploymentStatus.DEPLOYING.value)


@dataclass(frozen=True)
class ReconcilerConfig:
    idle_interval: float = 2.0
    idle_max: float = 30.0
    max_start_failures: int = 3
    recent_events: int = 20


class ReconcileService:
    def __init__(
        self, uow: UnitOfWorkFactory, backend: RuntimeBackend, config: ReconcilerConfig
    ) -> None:
        self.uow = uow
        self.backend = backend
        self.config = config
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._fingerprints: dict[UUID, Any] = {}
        self.passes = 0
        self._live = False  # the last pass saw deployments (see _run)

    # -- loop ----------------------------------------------------------------------------------
    def wake(self) -> None:
        self._wake.set()

    async def start(self) -> None:
        if hasattr(self.backend, "on_change"):
            self.backend.on_change = self.wake  # e.g. a replica process exited
        await self.backend.start()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="reconciler")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)
        await self.backend.close()

    async def _run(self) -> None:
        # The periodic pass repairs a missed wake; with nothing to watch it backs off from
        # `idle_interval` to `idle_max` (a wake, a change or a replica to watch resets it).
        idle = Backoff(self.config.idle_interval, self.config.idle_max)

        async def one_pass() -> Pace:
            await self.pass_once()
            # Sooner than the idle poll while a replica starts, a restart is due or a health
            # check comes up: that is a deadline, not idleness.
            due = self.backend.next_pass_in(idle.delay)
            if self._live:
                # Live deployments to keep converged (a backend without change hooks, as
                # Kubernetes, sees drift only by passing): the idle poll stays short.
                due = min(due, self.config.idle_interval)
            return Pace(at_most=due)

        def failed(exc: Exception) -> Pace:
            # A database or backend hiccup: log it and try again on the next pass.
            log_loop_failure(log, "reconcile pass failed", exc)
            return Pace(at_most=self.config.idle_interval)

        await run_loop(one_pass, idle, self._wake, on_failure=failed)

    # -- one pass ------------------------------------------------------------------------------
    async def pass_once(self) -> None:
        self.passes += 1
        specs, deleting = await self._desired()
        self._live = bool(specs or deleting)
        # Deployments being deleted are absent from `specs`: this pass already stops their
        # replicas; `undeploy` below waits for them and is a no-op when they are gone.
        observations = await self.backend.reconcile(list(specs.values()))
        if not self.backend.active:
            return  # another deployer drives this host's replicas
        for deployment_id in deleting:
            await self.backend.undeploy(deployment_id)
            await self._deleted(deployment_id)
        # One deployment whose observation cannot be stored (a value the database refuses)
        # must not freeze every other tenant's: record the rest, then fail the pass with it.
        failed: Exception | None = None
        for deployment_id, obs in observations.items():
            try:
                await self._record(specs[deployment_id], obs)
            except Exception as exc:  # re-raised once the others are recorded
                failed = failed or exc
        if failed is not None:
            raise failed

    async def _desired(self) -> tuple[dict[UUID, DeploymentSpec], list[UUID]]:
        async with self.uow() as uow:
            rows = await DeploymentRepository(uow.session).live()
            revisions = {
                (r.deployment_id, r.revision): r
                for r in await RevisionRepository(uow.session).for_deployments([d.id for d in rows])
            }
            versions = VersionRepository(uow.session)
            specs: dict[UUID, DeploymentSpec] = {}
            deleting: list[UUID] = []

            async def target(d: DeploymentRecord, revision: int | None) -> RevisionTarget | None:
                rev = revisions.get((d.id, revision)) if revision else None
                if rev is None:
                    return None
                version = await versions.get_owned(d.owner_id, rev.version_id)
                if version is None or not version.artifact_uri:
                    return None
                return RevisionTarget(
                    revision=rev.revision,
                    version_id=version.id,
                    version_tag=version.version_tag,
                    artifact_uri=version.artifact_uri,
                    sha256=version.sha256,
                    filename=version.filename,
                    replicas=d.desired_replicas,
                    wheelhouse_uri=version.wheelhouse_uri,
                )

            for d in rows:
                if d.deleting:
                    deleting.append(d.id)
                    continue
                if d.status == DeploymentStatus.FAILED.value:
                    # The failed revision stays down; the last good one keeps serving.
                    goal, fallback = await target(d, d.serving_revision), None
                else:
                    goal = await target(d, d.revision)
                    fallback = (
                        await target(d, d.serving_revision)
                        if d.status in _ROLLING_OUT and d.serving_revision != d.revision
                        else None
                    )
                if goal is not None:
                    policy = policy_from(d.autoscaling) if d.autoscaling else None
                    specs[d.id] = DeploymentSpec(
                        d.id, d.owner_id, d.name, goal, fallback, autoscaling=policy
                    )
        return specs, deleting

    async def _deleted(self, deployment_id: UUID) -> None:
        async with self.uow() as uow:
            d = await DeploymentRepository(uow.session).get_any(deployment_id)
            if d is None or d.deleted_at is not None:
                return
            d.deleted_at = utcnow()
            d.updated_at = d.deleted_at
            d.status = DeploymentStatus.STOPPED.value
            d.ready_replicas = 0
            d.endpoints = []
            replicas = ReplicaRepository(uow.session)
            for row in await replicas.for_deployment(deployment_id):
                await replicas.remove(row)
            await EventRepository(uow.session).record(d.id, "deleted", "all replicas stopped")
            await uow.publish(
                event_for(
                    DeploymentDeleted(deployment_id=d.id, owner_id=d.owner_id), d.id, d.owner_id
                )
            )
            await uow.commit()
        self._fingerprints.pop(deployment_id, None)

    async def _record(self, spec: DeploymentSpec, obs: DeploymentObservation) -> None:
        fingerprint = (
            spec,
            tuple(
                # start_id and timings: a start measured since the last write is learnt
                (
                    r.revision,
                    r.index,
                    r.status,
                    r.pid,
                    r.port,
                    r.restarts,
                    r.last_error,
                    r.start_id,
                    r.timings is not None,
                )
                for r in obs.replicas
            ),
            tuple(sorted(obs.fatal.items())),
            tuple(sorted(obs.start_failures.items())),
        )
        if not obs.events and self._fingerprints.get(spec.deployment_id) == fingerprint:
            return  # nothing new: no write (passes run every few ms while replicas start)
        async with self.uow() as uow:
            # Locked like the API's and the worker's writes, so a status decided here never
            # overwrites a revision or status they committed meanwhile (or the reverse).
            d = await DeploymentRepository(uow.session).get_live(
                spec.deployment_id, for_update=True
            )
            if d is None or d.deleting:
                return
            events = EventRepository(uow.session)
            for kind, message in obs.events:
                await events.record(d.id, kind, message)
            await self._transition(uow, d, spec, obs)
            await self._mirror_replicas(uow, d, spec, obs)
            if obs.events:
                await events.prune(d.id, self.config.recent_events * 5)
            await uow.commit()
        self._fingerprints[spec.deployment_id] = fingerprint

    async def _transition(
        self, uow: UnitOfWork, d: DeploymentRecord, spec: DeploymentSpec, obs: DeploymentObservation
    ) -> None:
        events = EventRepository(uow.session)
        published_ready = False
        # Revision-changing transitions only when the row still targets what this pass ran
        # (the API may have moved it on meanwhile).
        if d.status in _ROLLING_OUT and spec.target.revision == d.revision:
            failures = obs.start_failures.get(d.revision, 0)
            fatal = obs.fatal.get(d.revision)
            if fatal or failures >= self.config.max_start_failures:
                reason = fatal or (
                    f"revision {d.revision} failed to start {failures} times: "
                    f"{obs.last_error.get(d.revision, 'unknown error')}"
                )
                d.status = DeploymentStatus.FAILED.value
                d.failure_reason = reason[:2000]
                d.updated_at = utcnow()
                await events.record(d.id, "failed", reason)
                await uow.publish(
                    event_for(
                        DeploymentFailed(
                            deployment_id=d.id,
                            owner_id=d.owner_id,
                            revision=d.revision,
                            reason=reason[:2000],
                        ),
                        d.id,
                        d.owner_id,
                    )
                )
            elif len(obs.ready(d.revision)) >= d.desired_replicas:
                d.status = DeploymentStatus.RUNNING.value
                d.serving_revision = d.revision
                d.failure_reason = None
                cold = dict(obs.cold_start.get(d.revision, {}))
                rev = await RevisionRepository(uow.session).get(d.id, d.revision)
                if rev is not None:
                    cold["request_to_ready_ms"] = round(
                        (utcnow() - rev.created_at).total_seconds() * 1000, 2
                    )
                d.cold_start = cold
                d.updated_at = utcnow()
                self._set_endpoints(d, obs)
                await events.record(
                    d.id,
                    "running",
                    f"revision {d.revision} running with {d.ready_replicas} replica(s)",
                )
                await self._publish_ready(uow, d)
                published_ready = True
        if not published_ready and self._set_endpoints(d, obs):
            d.updated_at = utcnow()
            if d.status == DeploymentStatus.RUNNING.value and d.endpoints:
                await self._publish_ready(uow, d)  # the gateway's endpoint table follows

    @staticmethod
    def _set_endpoints(d: DeploymentRecord, obs: DeploymentObservation) -> bool:
        """Route to the target revision once it runs; during a rollout (or after it failed) to
        the last good revision while it still has ready replicas."""
        revision = d.revision
        if d.status != DeploymentStatus.RUNNING.value and d.serving_revision:
            if obs.endpoints(d.serving_revision) or d.status == DeploymentStatus.FAILED.value:
                revision = d.serving_revision
        # Replicas may share an endpoint (the kubernetes backend's pods sit behind one Service
        # URL): the route gets each endpoint once, the count stays the number of ready replicas.
        endpoints = list(dict.fromkeys(obs.endpoints(revision)))
        ready = len(obs.ready(revision))
        if endpoints == list(d.endpoints) and ready == d.ready_replicas:
            return False
        d.endpoints = endpoints
        d.ready_replicas = ready
        return True

    async def _publish_ready(self, uow: UnitOfWork, d: DeploymentRecord) -> None:
        await uow.publish(
            event_for(
                DeploymentReady(
                    deployment_id=d.id,
                    owner_id=d.owner_id,
                    revision=d.serving_revision or d.revision,
                    url=d.url,
                    endpoints=list(d.endpoints),
                    ready_replicas=d.ready_replicas,
                    cold_start=dict(d.cold_start or {}),
                ),
                d.id,
                d.owner_id,
            )
        )

    async def _mirror_replicas(
        self, uow: UnitOfWork, d: DeploymentRecord, spec: DeploymentSpec, obs: DeploymentObservation
    ) -> None:
        deployment_id = d.id
        versions = _RevisionVersions(uow, d, spec)
        repo = ReplicaRepository(uow.session)
        rows = {(r.revision, r.index): r for r in await repo.for_deployment(deployment_id)}
        now = utcnow()
        for view in obs.replicas:
            row = rows.pop((view.revision, view.index), None)
            if row is None:
                row = ReplicaRecord(
                    deployment_id=deployment_id,
                    revision=view.revision,
                    index=view.index,
                    restarts=0,
                    status=view.status.value,
                    updated_at=now,
                )
                await repo.add(row)
            if (row.pid, row.status) != (view.pid, view.status.value):
                if view.status.value == "Starting" and row.pid != view.pid:
                    row.started_at = now
                if view.status.value == "Ready" and row.status != "Ready":
                    row.ready_at = now
            row.pid = view.pid
            row.port = view.port
            row.status = view.status.value
            row.restarts = view.restarts
            row.launcher = view.launcher
            row.last_error = view.last_error
            row.updated_at = now
            if row.start_id != start_key(view.start_id):
                row.start_id, row.cold_start = start_key(view.start_id), None
            if row.cold_start is None and view.timings and view.start_id:
                # Learnt once per start, in this transaction: a failed write learns nothing.
                version = await versions.of(view.revision)
                row.cold_start = await learn_start(uow.session, view, deployment_id, version)
        for row in rows.values():
            await repo.remove(row)


class _RevisionVersions:
    """The version each revision of a deployment runs, looked up once per record."""

    def __init__(self, uow: UnitOfWork, d: DeploymentRecord, spec: DeploymentSpec) -> None:
        self.uow, self.d = uow, d
        self.ids = {t.revision: t.version_id for t in (spec.target, spec.fallback) if t}
        self.found: dict[int, VersionProjection | None] = {}

    async def of(self, revision: int) -> VersionProjection | None:
        if revision not in self.found:
            version_id = self.ids.get(revision)
            if version_id is None:
                rev = await RevisionRepository(self.uow.session).get(self.d.id, revision)
                version_id = rev.version_id if rev is not None else None
            self.found[revision] = (
                await VersionRepository(self.uow.session).get_owned(self.d.owner_id, version_id)
                if version_id is not None
                else None
            )
        return self.found[revision]
