"""The `local` runtime backend: every replica of every deployment is a local runtime process.

This module converges and observes; the package has one module per job:
`identity` (pid + start time), `state` (replica records and files), `locking` (one deployer per
runtime directory), `launching` (warm pool or plain process), `watching` (pidfd exit
notifications), `artifact_cache` (verified bytes of artifacts and wheelhouses), `pool_client`.

- Start: the artifact is copied into the local cache (bytes only) and a process is forked from
  the warm pool (`python -m kubeserve_runtime.pool`) - or, when the pool is unavailable,
  started as a plain `python -m kubeserve_runtime` subprocess.
- Ground truth: the replica files of `state`. On start the backend re-adopts every recorded
  process that is still alive (and answers health), restarts the dead ones and kills
  unrecorded leftovers - never a duplicate.
- Health: `/v2/health/ready` while starting (every pass) and every `health_interval` once
  ready; a dead or repeatedly unhealthy replica is restarted with exponential backoff.
- Stop: SIGTERM to the replica's process group, SIGKILL after `stop_grace`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import signal
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from uuid import UUID, uuid4

from kubeserve_common.security.sandbox_opt_out import warn_insecure_once

from kubeserve_deployer.backends.local.activity import Activity
from kubeserve_deployer.backends.local.adoption import adopt_recorded
from kubeserve_deployer.backends.local.artifact_cache import (
    ArtifactCache,
    ArtifactUnusable,
    FetchFailed,
)
from kubeserve_deployer.backends.local.environment import runtime_environment
from kubeserve_deployer.backends.local.health import HealthChecker
from kubeserve_deployer.backends.local.identity import (
    is_alive,
    proc_start_time,
    signal_replica,
    wait_dead,
)
from kubeserve_deployer.backends.local.launching import Launcher
from kubeserve_deployer.backends.local.locking import DirectoryLock
from kubeserve_deployer.backends.local.pool_client import WarmPool
from kubeserve_deployer.backends.local.sandboxing import (
    ReplicaLimits,
    ReplicaSandboxes,
    SandboxGate,
)
from kubeserve_deployer.backends.local.settings import LocalBackendSettings
from kubeserve_deployer.backends.local.state import Replica, log_tail, read_json, write_json
from kubeserve_deployer.backends.local.watching import ExitWatcher
from kubeserve_deployer.domain.deployments import (
    DeploymentObservation,
    DeploymentSpec,
    ReplicaStatus,
    RevisionTarget,
)
from kubeserve_deployer.metrics import COLD_START, REPLICA_CRASHES, REPLICAS, WARM_POOL_UP

log = logging.getLogger(__name__)


class LocalBackend:
    name = "local"

    def __init__(
        self,
        config: LocalBackendSettings,
        cache: ArtifactCache,
        *,
        runtime_dir: Path,
        limits: ReplicaLimits,
    ) -> None:
        self.config = config
        self.cache = cache
        self.dir = runtime_dir
        self.state_dir = self.dir / "replicas"
        self.log_dir = self.dir / "logs"
        self.pool = (
            WarmPool(config, self.dir / "pool.log", env=runtime_environment())
            if config.use_warm_pool
            else None
        )
        self.replicas: dict[str, Replica] = {}
        self.specs: dict[UUID, DeploymentSpec] = {}
        self.activity = Activity()
        self.lock = DirectoryLock(self.dir)
        self.watcher = ExitWatcher()
        sandboxed = not config.insecure_no_sandbox
        self.sandboxes = ReplicaSandboxes(self.dir, limits) if sandboxed else None
        self.launcher = Launcher(config, self.pool, self.state_dir, self.sandboxes)
        self.gate = SandboxGate(config.runtime_python, runtime_environment()) if sandboxed else None
        self.health = HealthChecker(config.health_timeout)
        self._op = asyncio.Lock()

    # -- lifecycle ---------------------------------------------------------------------------
    @property
    def on_change(self) -> Callable[[], None] | None:
        """Called when a watched replica process exits (the reconciler's wake-up), so a crash
        is handled at once instead of at the next health check."""
        return self.watcher.on_exit

    @on_change.setter
    def on_change(self, callback: Callable[[], None] | None) -> None:
        self.watcher.on_exit = callback

    @property
    def active(self) -> bool:
        return self.lock.held

    async def start(self) -> None:
        for d in (self.state_dir, self.log_dir):
            d.mkdir(parents=True, exist_ok=True)
        if self.sandboxes is not None:
            self.sandboxes.prepare()
        if self.gate is not None:
            self.gate.start()
        else:
            warn_insecure_once(log)
        if self.pool is not None:
            self.pool.start()
        self._try_lock()

    async def close(self) -> None:
        if self.config.stop_replicas_on_exit and self.active:
            # The desired state stays in the database: the next deployer starts them again.
            async with self._op:
                await self._stop_many(list(self.replicas.values()))
        self.watcher.unwatch_all()
        if self.gate is not None:
            await self.gate.close()
        if self.pool is not None:
            await self.pool.close()
        await self.health.close()
        self.lock.release()
        self.replicas.clear()

    def _try_lock(self) -> None:
        if not self.lock.held and self.lock.try_acquire():
            self._adopt()

    def _adopt(self) -> None:
        """Load what a previous deployer recorded; the next pass health-checks it."""
        self.watcher.unwatch_all()
        self.replicas = adopt_recorded(self.state_dir)
        for replica in self.replicas.values():
            if replica.status is ReplicaStatus.STARTING:
                self.watcher.watch(replica.key, replica.pid)

    # -- the port ----------------------------------------------------------------------------
    async def deploy(self, spec: DeploymentSpec) -> DeploymentObservation:
        async with self._op:
            self.specs[spec.deployment_id] = spec
            await self._observe_all()
            return await self._converge(spec)

    async def scale(self, deployment_id: UUID, replicas: int) -> DeploymentObservation:
        spec = self.specs.get(deployment_id)
        if spec is None:
            raise KeyError(f"deployment {deployment_id} is not deployed here")
        target = RevisionTarget(**{**spec.target.__dict__, "replicas": replicas})
        return await self.deploy(DeploymentSpec(**{**spec.__dict__, "target": target}))

    async def undeploy(self, deployment_id: UUID) -> None:
        async with self._op:
            self.specs.pop(deployment_id, None)
            await self._stop_many(
                [r for r in self.replicas.values() if r.deployment_id == deployment_id]
            )
            self._forget(deployment_id)
            await asyncio.to_thread(shutil.rmtree, self.log_dir / str(deployment_id), True)

    async def status(self, deployment_id: UUID) -> DeploymentObservation:
        return self._observation(deployment_id)

    async def reconcile(self, specs: Sequence[DeploymentSpec]) -> dict[UUID, DeploymentObservation]:
        if not self.active:
            self._try_lock()
            if not self.active:
                return {}
        async with self._op:
            self.specs = {s.deployment_id: s for s in specs}
            await self._observe_all()
            result = {}
            for spec in specs:
                result[spec.deployment_id] = await self._converge(spec)
            orphans = [r for r in self.replicas.values() if r.deployment_id not in self.specs]
            if orphans:
                await self._stop_many(orphans)
                for deployment_id in {r.deployment_id for r in orphans}:
                    self._forget(deployment_id)
            for status in ReplicaStatus:
                count = sum(1 for r in self.replicas.values() if r.status is status)
                REPLICAS.labels(self.name, status.value).set(count)
            WARM_POOL_UP.set(1 if self.pool is not None and self.pool.ready else 0)
            return result

    async def retire_tenant(self, user_id: UUID) -> None:
        # Nothing per tenant to remove here: replicas, logs and cached artifacts are kept per
        # deployment, and the reconcile loop removed the user's deployments already.
        return None

    def next_pass_in(self, idle: float) -> float:
        now = time.monotonic()
        delay = idle
        for r in self.replicas.values():
            if r.status is ReplicaStatus.STARTING:
                return self.config.starting_poll_interval
            if r.status is ReplicaStatus.CRASHED:
                delay = min(delay, max(r.next_restart - now, self.config.starting_poll_interval))
            elif r.status is ReplicaStatus.READY:
                delay = min(delay, max(r.last_health + self.config.health_interval - now, 0.05))
        return delay

    # -- observing ---------------------------------------------------------------------------
    async def _observe_all(self) -> None:
        await asyncio.gather(*(self._observe(r) for r in list(self.replicas.values())))

    async def _observe(self, r: Replica) -> None:
        if r.status in (ReplicaStatus.CRASHED, ReplicaStatus.STOPPED):
            return
        now = time.monotonic()
        if not is_alive(r.pid, r.start_time):
            tail = log_tail(self._log_path(r))
            self._crash(r, f"process exited{': ' + tail if tail else ''}")
            return
        if r.status is ReplicaStatus.STARTING:
            if await self.health.healthy(r.endpoint):
                self._became_ready(r)
            elif now - r.started_mono > self.config.replica_start_timeout:
                signal_replica(int(r.pid or 0), signal.SIGKILL)
                self._crash(r, f"not ready within {self.config.replica_start_timeout:g}s")
            return
        if now - r.last_health < self.config.health_interval:
            return
        r.last_health = now
        if await self.health.healthy(r.endpoint):
            r.health_failures = 0
            return
        r.health_failures += 1
        if r.health_failures >= self.config.unhealthy_threshold:
            signal_replica(int(r.pid or 0), signal.SIGKILL)
            self._crash(r, f"failed {r.health_failures} health checks in a row")

    def _became_ready(self, r: Replica) -> None:
        now = time.monotonic()
        r.status = ReplicaStatus.READY
        r.ever_ready = True
        r.failures = 0
        r.health_failures = 0
        r.last_health = now
        if r.adopted:
            r.adopted = False
            self._event(r.deployment_id, "replica_adopted", f"re-adopted replica {r.key_label}")
        else:
            child = read_json(self.state_dir / f"{r.key}.timings.json") or {}
            timings = self.activity.record_cold_start(r, now - r.started_mono, child)
            r.cold_start = {k: round(v, 2) for k, v in timings.items()}
            COLD_START.labels(self.name, r.launcher or "unknown").observe(
                timings["total_ms"] / 1000
            )
            self._event(
                r.deployment_id,
                "replica_ready",
                f"replica {r.key_label} ready on {r.where} "
                f"({r.launcher}, {timings['total_ms']:.0f} ms)",
            )
        self._persist(r)

    def _crash(self, r: Replica, reason: str, *, start_failure: bool = True) -> None:
        """Record that `r` is down and when to retry. A failure of our own dependencies (the
        artifact store) is retried with backoff but never counts against the model, so a short
        store outage cannot fail a deploy."""
        r.status = ReplicaStatus.CRASHED
        r.last_error = reason
        if start_failure:
            REPLICA_CRASHES.labels(self.name).inc()
            r.failures += 1
            attempt = r.failures
        else:
            r.fetch_failures += 1
            attempt = r.fetch_failures
        delay = self.config.restart_delay(attempt)
        r.next_restart = time.monotonic() + delay
        self._event(
            r.deployment_id,
            "replica_crashed",
            f"replica {r.key_label} down ({reason}); restart in {delay:.1f}s",
        )
        self._persist(r)

    # -- converging --------------------------------------------------------------------------
    async def _converge(self, spec: DeploymentSpec) -> DeploymentObservation:
        target = spec.target
        wanted: dict[tuple[int, int], RevisionTarget] = {
            (target.revision, i): target for i in range(target.replicas)
        }
        ready_in_target = sum(
            1
            for r in self.replicas.values()
            if r.deployment_id == spec.deployment_id
            and r.revision == target.revision
            and r.index < target.replicas
            and r.status is ReplicaStatus.READY
        )
        if spec.fallback is not None and ready_in_target < target.replicas:
            for i in range(spec.fallback.replicas):
                wanted[(spec.fallback.revision, i)] = spec.fallback
        now = time.monotonic()
        for (revision, index), rev in sorted(wanted.items()):
            if (spec.deployment_id, revision) in self.activity.fatal:
                continue
            key = f"{spec.deployment_id}.{revision}.{index}"
            existing = self.replicas.get(key)
            if existing is None:
                await self._start(spec, rev, index, None)
            elif existing.status is ReplicaStatus.CRASHED and now >= existing.next_restart:
                await self._start(spec, rev, index, existing)
        extra = [
            r
            for r in self.replicas.values()
            if r.deployment_id == spec.deployment_id and (r.revision, r.index) not in wanted
        ]
        if extra:
            await self._stop_many(extra)
        return self._observation(spec.deployment_id)

    async def _start(
        self, spec: DeploymentSpec, rev: RevisionTarget, index: int, existing: Replica | None
    ) -> None:
        r = existing or Replica(spec.deployment_id, rev.revision, index)
        if existing is not None:
            r.restarts += 1
        r.adopted = False
        r.timings = {}
        r.start_id, r.cold_start = uuid4().hex, None
        refused = await self.gate.refusal() if self.gate is not None else None
        if refused is not None:
            self._refuse(spec, rev, r, "sandbox_unavailable", refused)
            return
        fetch_started = time.perf_counter()
        try:
            cached, site = await self.cache.fetch_version(
                rev.artifact_uri, rev.sha256, rev.filename, rev.wheelhouse_uri
            )
        except ArtifactUnusable as exc:
            self._refuse(spec, rev, r, "artifact_unusable", exc.message)
            return
        except FetchFailed as exc:
            self.replicas[r.key] = r
            r.pid = None
            self._crash(r, str(exc), start_failure=False)
            return
        if cached.refetched:
            self._event(spec.deployment_id, "artifact_refetched", cached.refetched)
        model_path = cached.path
        r.fetch_failures = 0
        r.timings["fetch_ms"] = (time.perf_counter() - fetch_started) * 1000
        r.timings["cache_hit"] = 1.0 if cached.hit else 0.0
        for stale in (f"{r.key}.pid", f"{r.key}.timings.json"):
            with contextlib.suppress(OSError):
                (self.state_dir / stale).unlink()
        log_path = self._log_path(r)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        spawn_started = time.perf_counter()
        try:
            r.pid, r.launcher = await self.launcher.launch(spec, rev, r, model_path, log_path, site)
        except Exception as exc:
            self.replicas[r.key] = r
            r.pid = None
            self._crash(r, f"could not start a runtime process: {type(exc).__name__}: {exc}")
            return
        r.timings["spawn_ms"] = (time.perf_counter() - spawn_started) * 1000
        r.start_time = proc_start_time(r.pid)
        self.watcher.watch(r.key, r.pid)
        r.status = ReplicaStatus.STARTING
        r.started_mono = time.monotonic()
        r.health_failures = 0
        self.replicas[r.key] = r
        self._persist(r)
        self._event(
            spec.deployment_id,
            "replica_starting",
            f"replica {r.key_label} starting on {r.where} (pid {r.pid}, {r.launcher}"
            f"{self._confinement(r)})",
        )

    def _confinement(self, r: Replica) -> str:
        if not r.socket:
            return ", NOT sandboxed"
        held = "; ".join(self.gate.warnings) if self.gate is not None else ""
        return f", sandboxed: {held}" if held else ", sandboxed"

    def _refuse(
        self, spec: DeploymentSpec, rev: RevisionTarget, r: Replica, kind: str, message: str
    ) -> None:
        """The revision can never start here: fatal (the deployment fails with `message`)."""
        if (spec.deployment_id, rev.revision) not in self.activity.fatal:
            self._event(spec.deployment_id, kind, message)
        self.activity.fatal[(spec.deployment_id, rev.revision)] = message
        self.replicas.pop(r.key, None)

    # -- stopping ----------------------------------------------------------------------------
    async def _stop_many(self, replicas: Sequence[Replica]) -> None:
        await asyncio.gather(*(self._stop(r) for r in replicas))

    async def _stop(self, r: Replica) -> None:
        if r.pid and is_alive(r.pid, r.start_time):
            signal_replica(r.pid, signal.SIGTERM)
            await wait_dead(r.pid, r.start_time, self.config.stop_grace)
            if is_alive(r.pid, r.start_time):
                signal_replica(r.pid, signal.SIGKILL)
                await wait_dead(r.pid, r.start_time, 5.0)
        self.watcher.unwatch(r.key)
        await self.health.forget(r.endpoint)
        if self.sandboxes is not None:
            await asyncio.to_thread(self.sandboxes.cleanup, r.key)
        r.status = ReplicaStatus.STOPPED
        self.replicas.pop(r.key, None)
        for suffix in (".json", ".pid", ".timings.json"):
            with contextlib.suppress(OSError):
                (self.state_dir / f"{r.key}{suffix}").unlink()
        self._event(r.deployment_id, "replica_stopped", f"replica {r.key_label} stopped")

    # -- bookkeeping -------------------------------------------------------------------------
    def _log_path(self, r: Replica) -> Path:
        return self.log_dir / str(r.deployment_id) / f"{r.revision}-{r.index}.log"

    def _persist(self, r: Replica) -> None:
        if r.key in self.replicas or r.status is not ReplicaStatus.STOPPED:
            write_json(self.state_dir / f"{r.key}.json", r.to_file())

    def _event(self, deployment_id: UUID, kind: str, message: str) -> None:
        self.activity.event(deployment_id, kind, message)

    def _forget(self, deployment_id: UUID) -> None:
        self.activity.forget(deployment_id)

    def _observation(self, deployment_id: UUID) -> DeploymentObservation:
        return self.activity.observation(deployment_id, self.replicas.values())
