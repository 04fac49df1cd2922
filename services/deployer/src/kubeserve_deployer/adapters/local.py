"""The `local` runtime backend: every replica is a runtime process on 127.0.0.1.

- Start: the artifact is copied into the local cache (bytes only), a free port is picked and a
  process is forked from the warm pool (`python -m kubeserve_runtime.pool`) - or, when the pool
  is unavailable, started as a plain `python -m kubeserve_runtime` subprocess. Each replica runs
  in a session of its own, so it outlives a deployer restart.
- Ground truth: `{runtime_dir}/replicas/{key}.json` (written by the backend right after the
  spawn) and `{key}.pid` (written by the forked child itself before it loads anything). A
  process is identified by pid *and* its kernel start time, so a reused pid is never mistaken
  for a replica. On start the backend re-adopts every recorded process that is still alive
  (and serves health on its port), restarts the dead ones and kills unrecorded leftovers - never
  a duplicate.
- Health: `/v2/health/ready` while starting (every pass) and every `health_interval` once
  ready; a dead or repeatedly unhealthy replica is restarted with exponential backoff.
- Stop: SIGTERM to the replica's process group, SIGKILL after `stop_grace`.

One deployer per runtime directory may act (an exclusive `flock`); another one waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import shutil
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
from kubeserve_common.net import free_port

from kubeserve_deployer.adapters.artifact_cache import ArtifactCache, ArtifactUnusable
from kubeserve_deployer.adapters.pool_client import PoolUnavailable, WarmPool
from kubeserve_deployer.domain.model import (
    DeploymentObservation,
    DeploymentSpec,
    ReplicaStatus,
    ReplicaView,
    RevisionTarget,
)
from kubeserve_deployer.metrics import COLD_START, REPLICA_CRASHES, REPLICAS, WARM_POOL_UP

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LocalBackendConfig:
    runtime_dir: Path
    python: str
    use_pool: bool = True
    pool_start_timeout: float = 60.0
    pool_request_timeout: float = 10.0
    start_timeout: float = 60.0
    health_interval: float = 2.0
    health_timeout: float = 1.0
    unhealthy_threshold: int = 3
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    stop_grace: float = 5.0
    starting_poll: float = 0.01
    fetch_timeout: float = 300.0
    stop_on_close: bool = False


@dataclass
class _Replica:
    deployment_id: UUID
    revision: int
    index: int
    status: ReplicaStatus = ReplicaStatus.STARTING
    pid: int | None = None
    start_time: int | None = None
    port: int | None = None
    launcher: str | None = None
    restarts: int = 0
    failures: int = 0  # consecutive crashes since the replica was last ready
    fetch_failures: int = 0  # consecutive artifact fetch failures (not the model's fault)
    ever_ready: bool = False
    last_error: str | None = None
    # In-memory only (monotonic clock).
    started_mono: float = 0.0
    next_restart: float = 0.0
    last_health: float = 0.0
    health_failures: int = 0
    adopted: bool = False
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.deployment_id}.{self.revision}.{self.index}"

    @property
    def key_label(self) -> str:
        return f"r{self.revision}/{self.index}"

    @property
    def endpoint(self) -> str | None:
        return f"http://127.0.0.1:{self.port}" if self.port else None

    def to_file(self) -> dict[str, Any]:
        return {
            "deployment_id": str(self.deployment_id),
            "revision": self.revision,
            "index": self.index,
            "pid": self.pid,
            "start_time": self.start_time,
            "port": self.port,
            "launcher": self.launcher,
            "restarts": self.restarts,
            "failures": self.failures,
            "ever_ready": self.ever_ready,
            "last_error": self.last_error,
        }

    @classmethod
    def from_file(cls, data: dict[str, Any]) -> _Replica:
        return cls(
            deployment_id=UUID(data["deployment_id"]),
            revision=int(data["revision"]),
            index=int(data["index"]),
            pid=data.get("pid"),
            start_time=data.get("start_time"),
            port=data.get("port"),
            launcher=data.get("launcher"),
            restarts=int(data.get("restarts", 0)),
            failures=int(data.get("failures", 0)),
            ever_ready=bool(data.get("ever_ready", False)),
            last_error=data.get("last_error"),
        )

    def view(self) -> ReplicaView:
        return ReplicaView(
            deployment_id=self.deployment_id,
            revision=self.revision,
            index=self.index,
            status=self.status,
            endpoint=self.endpoint if self.status is ReplicaStatus.READY else None,
            pid=self.pid,
            port=self.port,
            restarts=self.restarts,
            launcher=self.launcher,
            last_error=self.last_error,
            ever_ready=self.ever_ready,
        )


# -- process identity (Linux /proc) -------------------------------------------------------------


def proc_start_time(pid: int) -> int | None:
    """Kernel start time of `pid` (clock ticks since boot), None when no such live process.
    A zombie counts as dead: nobody may have reaped it yet, but it serves nothing."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            stat = fh.read()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] in ("Z", "X", "x"):
        return None
    return int(fields[19])


def is_alive(pid: int | None, start_time: int | None) -> bool:
    if not pid:
        return False
    current = proc_start_time(pid)
    return current is not None and (start_time is None or current == start_time)


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        try:
            same_group = os.getpgid(pid) == pid
        except ProcessLookupError:
            return
        # Replicas lead their own session and group: signal the group, so anything the
        # runtime started goes too.
        if same_group:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)


async def _wait_dead(pid: int, start_time: int | None, timeout: float) -> None:  # noqa: ASYNC109
    # Polling: an adopted replica is not our child, so there is nothing to wait() on.
    deadline = time.monotonic() + timeout
    while is_alive(pid, start_time) and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.02)


# What a runtime process may inherit from the deployer's environment. An allowlist: the
# deployer's own settings (internal secret, database URL, S3 credentials) must never reach a
# process that runs a tenant's pickle.
_ENV_ALLOWED = {"PATH", "HOME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "PYTHONPATH", "VIRTUAL_ENV"}
_ENV_ALLOWED_PREFIXES = ("LC_",)
_ENV_ALLOWED_SUFFIXES = ("_NUM_THREADS",)  # OMP/OPENBLAS/MKL thread counts
RUNTIME_TUNABLES = (
    "KUBESERVE_MAX_BATCH_SIZE",
    "KUBESERVE_MAX_BATCH_WAIT_MS",
    "KUBESERVE_MODEL_THREADS",
    "KUBESERVE_MAX_REQUEST_BYTES",
)


def runtime_environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of the warm pool and of runtime processes: the allowlisted part of ours
    plus `extra`."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key in _ENV_ALLOWED
        or key in RUNTIME_TUNABLES
        or key.startswith(_ENV_ALLOWED_PREFIXES)
        or key.endswith(_ENV_ALLOWED_SUFFIXES)
    }
    env["PYTHONUNBUFFERED"] = "1"
    return {**env, **(extra or {})}


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(data), encoding="utf-8")
    os.replace(tmp, path)


def _open_log(path: Path) -> Any:
    return open(path, "ab")


def _log_tail(path: Path, limit: int = 2000) -> str:
    """The last meaningful lines of a replica's log: why it died, in its own words."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - limit))
            text = fh.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return " | ".join(lines[-3:])[-600:]


class LocalBackend:
    name = "local"

    def __init__(self, config: LocalBackendConfig, cache: ArtifactCache) -> None:
        self.config = config
        self.cache = cache
        self.dir = config.runtime_dir
        self.state_dir = self.dir / "replicas"
        self.log_dir = self.dir / "logs"
        self.pool = (
            WarmPool(
                config.python,
                self.dir / "pool.log",
                env=runtime_environment(),
                start_timeout=config.pool_start_timeout,
                request_timeout=config.pool_request_timeout,
            )
            if config.use_pool
            else None
        )
        self.replicas: dict[str, _Replica] = {}
        self.specs: dict[UUID, DeploymentSpec] = {}
        self._fatal: dict[tuple[UUID, int], str] = {}
        self._cold_start: dict[tuple[UUID, int], dict[str, float]] = {}
        self._events: dict[UUID, list[tuple[str, str]]] = {}
        self._lock_fh: Any = None
        self._waiting = False
        self._pidfds: dict[str, int] = {}
        # Called when a watched replica process exits (the reconciler's wake-up), so a crash is
        # handled at once instead of at the next health check.
        self.on_change: Callable[[], None] | None = None
        self._http: httpx.AsyncClient | None = None
        self._op = asyncio.Lock()

    # -- lifecycle ---------------------------------------------------------------------------
    @property
    def active(self) -> bool:
        return self._lock_fh is not None

    async def start(self) -> None:
        for d in (self.state_dir, self.log_dir):
            d.mkdir(parents=True, exist_ok=True)
        self._http = httpx.AsyncClient(timeout=self.config.health_timeout, trust_env=False)
        if self.pool is not None:
            self.pool.start()
        self._try_lock()

    async def close(self) -> None:
        if self.config.stop_on_close and self.active:
            # The desired state stays in the database: the next deployer starts them again.
            async with self._op:
                await self._stop_many(list(self.replicas.values()))
        for key in list(self._pidfds):
            self._unwatch(key)
        if self.pool is not None:
            await self.pool.close()
        if self._http is not None:
            await self._http.aclose()
            self._http = None
        if self._lock_fh is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._lock_fh, fcntl.LOCK_UN)
            self._lock_fh.close()
            self._lock_fh = None
        self.replicas.clear()

    def _try_lock(self) -> None:
        if self._lock_fh is not None:
            return
        fh = open(self.dir / "deployer.lock", "a+")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.close()
            if not self._waiting:
                log.warning("another deployer drives %s; standing by", self.dir)
                self._waiting = True
            return
        self._waiting = False
        self._lock_fh = fh
        self._adopt()

    def _adopt(self) -> None:
        """Load what a previous deployer recorded; the next pass health-checks it."""
        for key in list(self._pidfds):
            self._unwatch(key)
        self.replicas.clear()
        recorded: set[int] = set()
        for path in sorted(self.state_dir.glob("*.json")):
            if path.name.endswith(".timings.json"):
                continue
            data = _read_json(path)
            if data is None:
                continue
            try:
                replica = _Replica.from_file(data)
            except (KeyError, ValueError, TypeError):
                continue
            replica.adopted = True
            replica.started_mono = time.monotonic()
            if is_alive(replica.pid, replica.start_time):
                replica.status = ReplicaStatus.STARTING  # Ready again once its health answers
                recorded.add(int(replica.pid or 0))
                self._watch(replica)
            else:
                replica.status = ReplicaStatus.CRASHED
                replica.next_restart = 0.0
                replica.last_error = replica.last_error or "not running after a deployer restart"
            self.replicas[replica.key] = replica
        # A child that wrote its pid file but whose spawn was never recorded (the deployer died
        # in between): nobody owns it, so it goes.
        for path in self.state_dir.glob("*.pid"):
            data = _read_json(path) or {}
            pid = data.get("pid")
            if pid and pid not in recorded and is_alive(pid, data.get("start_time")):
                log.warning("killing unrecorded runtime process %s", pid)
                _signal(int(pid), signal.SIGKILL)
            if path.stem not in self.replicas:
                with contextlib.suppress(OSError):
                    path.unlink()
        if self.replicas:
            log.info("re-adopting %d recorded replicas", len(self.replicas))

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
                return self.config.starting_poll
            if r.status is ReplicaStatus.CRASHED:
                delay = min(delay, max(r.next_restart - now, self.config.starting_poll))
            elif r.status is ReplicaStatus.READY:
                delay = min(delay, max(r.last_health + self.config.health_interval - now, 0.05))
        return delay

    # -- observing ---------------------------------------------------------------------------
    async def _healthy(self, replica: _Replica) -> bool:
        assert self._http is not None
        try:
            response = await self._http.get(f"{replica.endpoint}/v2/health/ready")
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    async def _observe_all(self) -> None:
        await asyncio.gather(*(self._observe(r) for r in list(self.replicas.values())))

    async def _observe(self, r: _Replica) -> None:
        if r.status in (ReplicaStatus.CRASHED, ReplicaStatus.STOPPED):
            return
        now = time.monotonic()
        if not is_alive(r.pid, r.start_time):
            tail = _log_tail(self._log_path(r))
            self._crash(r, f"process exited{': ' + tail if tail else ''}")
            return
        if r.status is ReplicaStatus.STARTING:
            if await self._healthy(r):
                self._became_ready(r)
            elif now - r.started_mono > self.config.start_timeout:
                _signal(int(r.pid or 0), signal.SIGKILL)
                self._crash(r, f"not ready within {self.config.start_timeout:g}s")
            return
        if now - r.last_health < self.config.health_interval:
            return
        r.last_health = now
        if await self._healthy(r):
            r.health_failures = 0
            return
        r.health_failures += 1
        if r.health_failures >= self.config.unhealthy_threshold:
            _signal(int(r.pid or 0), signal.SIGKILL)
            self._crash(r, f"failed {r.health_failures} health checks in a row")

    def _became_ready(self, r: _Replica) -> None:
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
            timings = dict(r.timings)
            timings["first_health_ms"] = (now - r.started_mono) * 1000
            child = _read_json(self.state_dir / f"{r.key}.timings.json") or {}
            for name in ("load_ms", "app_ms"):
                if isinstance(child.get(name), int | float):
                    timings[f"model_{name}" if name == "load_ms" else name] = float(child[name])
            timings["total_ms"] = sum(
                timings.get(k, 0.0) for k in ("fetch_ms", "spawn_ms", "first_health_ms")
            )
            COLD_START.labels(self.name, r.launcher or "unknown").observe(
                timings["total_ms"] / 1000
            )
            self._cold_start[(r.deployment_id, r.revision)] = {
                k: round(v, 2) for k, v in timings.items()
            }
            self._event(
                r.deployment_id,
                "replica_ready",
                f"replica {r.key_label} ready on port {r.port} "
                f"({r.launcher}, {timings['total_ms']:.0f} ms)",
            )
        self._persist(r)

    def _crash(self, r: _Replica, reason: str, *, start_failure: bool = True) -> None:
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
        delay = min(self.config.backoff_base * 2 ** (attempt - 1), self.config.backoff_max)
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
            if (spec.deployment_id, revision) in self._fatal:
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
        self, spec: DeploymentSpec, rev: RevisionTarget, index: int, existing: _Replica | None
    ) -> None:
        r = existing or _Replica(spec.deployment_id, rev.revision, index)
        if existing is not None:
            r.restarts += 1
        r.adopted = False
        r.timings = {}
        fetch_started = time.perf_counter()
        try:
            model_path, hit = await self.cache.fetch(rev.artifact_uri, rev.sha256, rev.filename)
        except ArtifactUnusable as exc:
            self._fatal[(spec.deployment_id, rev.revision)] = exc.message
            self._event(spec.deployment_id, "artifact_unusable", exc.message)
            self.replicas.pop(r.key, None)
            return
        except Exception as exc:  # the store is down or slow: retried with backoff
            self.replicas[r.key] = r
            r.pid = None
            reason = f"artifact fetch failed: {type(exc).__name__}: {exc}"
            self._crash(r, reason, start_failure=False)
            return
        site: Path | None = None
        if rev.wheelhouse_uri:
            try:
                site = await self.cache.fetch_wheelhouse(rev.wheelhouse_uri)
            except ArtifactUnusable as exc:
                self._fatal[(spec.deployment_id, rev.revision)] = exc.message
                self._event(spec.deployment_id, "artifact_unusable", exc.message)
                self.replicas.pop(r.key, None)
                return
            except Exception as exc:
                self.replicas[r.key] = r
                r.pid = None
                self._crash(
                    r, f"wheelhouse fetch failed: {type(exc).__name__}: {exc}", start_failure=False
                )
                return
        r.fetch_failures = 0
        r.timings["fetch_ms"] = (time.perf_counter() - fetch_started) * 1000
        r.timings["cache_hit"] = 1.0 if hit else 0.0
        r.port = free_port()
        for stale in (f"{r.key}.pid", f"{r.key}.timings.json"):
            with contextlib.suppress(OSError):
                (self.state_dir / stale).unlink()
        log_path = self._log_path(r)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        spawn_started = time.perf_counter()
        try:
            r.pid, r.launcher = await self._launch(spec, rev, r, model_path, log_path, site)
        except Exception as exc:
            self.replicas[r.key] = r
            r.pid = None
            self._crash(r, f"could not start a runtime process: {type(exc).__name__}: {exc}")
            return
        r.timings["spawn_ms"] = (time.perf_counter() - spawn_started) * 1000
        r.start_time = proc_start_time(r.pid)
        self._watch(r)
        r.status = ReplicaStatus.STARTING
        r.started_mono = time.monotonic()
        r.health_failures = 0
        self.replicas[r.key] = r
        self._persist(r)
        self._event(
            spec.deployment_id,
            "replica_starting",
            f"replica {r.key_label} starting on port {r.port} (pid {r.pid}, {r.launcher})",
        )

    async def _launch(
        self,
        spec: DeploymentSpec,
        rev: RevisionTarget,
        r: _Replica,
        model_path: Path,
        log_path: Path,
        site: Path | None = None,
    ) -> tuple[int, str]:
        # The tenant labels the replica's metrics (one value per replica: "CPU per user").
        env = {
            "KUBESERVE_DEPLOYMENT_ID": str(spec.deployment_id),
            "KUBESERVE_TENANT_ID": str(spec.owner_id),
        }
        if site is not None:
            # The version's own packages come first. A forked pool child has the pool's versions
            # imported already, so such a replica starts as a plain process instead.
            env["PYTHONPATH"] = str(site)
        if self.pool is not None and site is None:
            self.pool.ensure_running()
            if not self.pool.ready:
                # A fresh interpreter would spend about as long on imports as the pool still
                # needs: waiting for the pool is never slower than the fallback.
                await self.pool.wait_ready(self.config.pool_start_timeout)
            if self.pool.ready:
                try:
                    pid, _ = await self.pool.spawn(
                        model=str(model_path),
                        name=spec.name,
                        version=rev.version_tag,
                        port=r.port,
                        deployment_id=str(spec.deployment_id),
                        log=str(log_path),
                        pidfile=str(self.state_dir / f"{r.key}.pid"),
                        timings=str(self.state_dir / f"{r.key}.timings.json"),
                        graceful_seconds=max(1, int(self.config.stop_grace) - 1),
                        env=env,
                    )
                    return pid, "pool"
                except PoolUnavailable as exc:
                    log.warning("warm pool unavailable, starting a plain process: %s", exc)
        with _open_log(log_path) as out:
            proc = await asyncio.create_subprocess_exec(
                self.config.python,
                "-m",
                "kubeserve_runtime",
                "--model",
                str(model_path),
                "--name",
                spec.name,
                "--version",
                rev.version_tag,
                "--port",
                str(r.port),
                "--deployment-id",
                str(spec.deployment_id),
                "--log-level",
                "warning",
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                start_new_session=True,
                env=runtime_environment(env),
            )
        return proc.pid, "process"

    # -- exit notifications ----------------------------------------------------------------
    def _watch(self, r: _Replica) -> None:
        """Get told when the replica's process exits (a pidfd works for any process, not only
        our children - adopted replicas and the pool's children included)."""
        self._unwatch(r.key)
        if not r.pid or not hasattr(os, "pidfd_open"):
            return
        try:
            fd = os.pidfd_open(r.pid)
        except OSError:
            return  # already gone: the next pass notices
        self._pidfds[r.key] = fd
        asyncio.get_running_loop().add_reader(fd, self._exited, r.key, fd)

    def _exited(self, key: str, fd: int) -> None:
        if self._pidfds.get(key) == fd:
            self._unwatch(key)
        if self.on_change is not None:
            self.on_change()

    def _unwatch(self, key: str) -> None:
        fd = self._pidfds.pop(key, None)
        if fd is None:
            return
        with contextlib.suppress(Exception):
            asyncio.get_running_loop().remove_reader(fd)
        with contextlib.suppress(OSError):
            os.close(fd)

    # -- stopping ----------------------------------------------------------------------------
    async def _stop_many(self, replicas: Sequence[_Replica]) -> None:
        await asyncio.gather(*(self._stop(r) for r in replicas))

    async def _stop(self, r: _Replica) -> None:
        if r.pid and is_alive(r.pid, r.start_time):
            _signal(r.pid, signal.SIGTERM)
            await _wait_dead(r.pid, r.start_time, self.config.stop_grace)
            if is_alive(r.pid, r.start_time):
                _signal(r.pid, signal.SIGKILL)
                await _wait_dead(r.pid, r.start_time, 5.0)
        self._unwatch(r.key)
        r.status = ReplicaStatus.STOPPED
        self.replicas.pop(r.key, None)
        for suffix in (".json", ".pid", ".timings.json"):
            with contextlib.suppress(OSError):
                (self.state_dir / f"{r.key}{suffix}").unlink()
        self._event(r.deployment_id, "replica_stopped", f"replica {r.key_label} stopped")

    # -- bookkeeping -------------------------------------------------------------------------
    def _log_path(self, r: _Replica) -> Path:
        return self.log_dir / str(r.deployment_id) / f"{r.revision}-{r.index}.log"

    def _persist(self, r: _Replica) -> None:
        if r.key in self.replicas or r.status is not ReplicaStatus.STOPPED:
            _write_json(self.state_dir / f"{r.key}.json", r.to_file())

    def _event(self, deployment_id: UUID, kind: str, message: str) -> None:
        self._events.setdefault(deployment_id, []).append((kind, message))

    def _forget(self, deployment_id: UUID) -> None:
        for key in [k for k in self._fatal if k[0] == deployment_id]:
            del self._fatal[key]
        for key in [k for k in self._cold_start if k[0] == deployment_id]:
            del self._cold_start[key]
        self._events.pop(deployment_id, None)

    def _observation(self, deployment_id: UUID) -> DeploymentObservation:
        mine = [r for r in self.replicas.values() if r.deployment_id == deployment_id]
        obs = DeploymentObservation(deployment_id=deployment_id)
        obs.replicas = [r.view() for r in sorted(mine, key=lambda r: (r.revision, r.index))]
        for r in mine:
            if not r.ever_ready and r.failures:
                obs.start_failures[r.revision] = max(
                    obs.start_failures.get(r.revision, 0), r.failures
                )
            if r.last_error and r.status is ReplicaStatus.CRASHED:
                obs.last_error[r.revision] = r.last_error
        for (dep, revision), message in self._fatal.items():
            if dep == deployment_id:
                obs.fatal[revision] = message
        for (dep, revision), timings in self._cold_start.items():
            if dep == deployment_id:
                obs.cold_start[revision] = timings
        obs.events = self._events.pop(deployment_id, [])
        return obs
