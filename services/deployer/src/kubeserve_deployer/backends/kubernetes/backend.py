"""The `kubernetes` runtime backend: one Helm release of charts/model-serving per deployment, in
the owner's namespace `user-{id}` (provisioned first), behind the same port as the local backend.

Level-triggered like the reconcile service that drives it. Each call takes one short step and
returns: `helm upgrade --install` (never `--wait`) when the release's values differ from what the
target revision needs, then a read of the Deployment, its pods and warning events. A rollout is
watched across passes (the loop polls every `poll_interval` while one is in progress) and fails
when a pod reports something retrying cannot fix (ImagePullBackOff, an invalid container
config), when it crash-loops past the reconciler's threshold (CrashLoopBackOff, OOMKilled), or
when it is not ready within `rollout_timeout` (with the quota or scheduling reason when there is
one).

Before Helm, the deployment's artifacts Secret (artifacts.py) is applied: presigned URLs of the
target's (and the still-serving revision's) files, signed again when half their validity is left.

Only the holder of the Lease acts (leader.py): on the others `active` is False and `reconcile`
does nothing, so several deployer replicas never race each other's Helm commands.

State in memory is a cache: after a restart - or on gaining leadership - the first pass asks
Helm for each release's values (equal: adopted without an upgrade; absent: installed again) and a
periodic scan of every `kubeserve-*` release reinstalls missing ones and uninstalls releases of
deleted deployments.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from uuid import UUID

from kubeserve_common.errors import KubeServeError, PermanentError, TransientError
from kubeserve_common.storage import ArtifactNotFound, StorageError

from kubeserve_deployer.backends.kubernetes.artifacts import ArtifactAccess, revisions_of
from kubeserve_deployer.backends.kubernetes.cluster import ClusterError, KubernetesPort
from kubeserve_deployer.backends.kubernetes.helm import HelmError, HelmPort
from kubeserve_deployer.backends.kubernetes.leader import LeaderElector
from kubeserve_deployer.backends.kubernetes.pods import OtherPods, other_pods
from kubeserve_deployer.backends.kubernetes.release import (
    PodState,
    artifacts_secret_name,
    autoscaling_note,
    chart_values,
    deployment_of,
    ingress_url,
    read_rollout,
    release_name,
    service_url,
    values_digest,
)
from kubeserve_deployer.backends.kubernetes.settings import KubernetesSettings
from kubeserve_deployer.backends.kubernetes.tenancy import namespace_for
from kubeserve_deployer.backends.kubernetes.tenants import KubernetesTenants
from kubeserve_deployer.domain.deployments import (
    DeploymentObservation,
    DeploymentSpec,
    ReplicaStatus,
    ReplicaView,
)
from kubeserve_deployer.metrics import REPLICAS

log = logging.getLogger(__name__)

BackendError = (HelmError, ClusterError, KubeServeError)


def _transient(exc: Exception) -> bool:
    """Worth retrying as is: a cluster or helm hiccup, an object store that is away."""
    if isinstance(exc, HelmError | ClusterError):
        return exc.transient
    return isinstance(exc, StorageError | TransientError) and not isinstance(exc, ArtifactNotFound)


@contextlib.contextmanager
def _classified(what: str) -> Iterator[None]:
    """Cluster errors as the consumer runner reads them: transient ones are retried, permanent
    ones (a missing RBAC right, an invalid object) dead-lettered."""
    try:
        yield
    except ClusterError as exc:
        log.warning("%s failed", what, extra={"error": str(exc)[:500]})
        if exc.transient:
            raise TransientError(f"{what}: {exc}") from exc
        raise PermanentError(f"{what}: {exc}") from exc


@dataclass
class _Release:
    """What this process knows about one deployment's release."""

    namespace: str
    digest: str | None = None  # digest of the values the release has (None: unknown)
    revision: int | None = None  # KubeServe revision those values run
    rollout_started: float = 0.0
    ready: set[int] = field(default_factory=set)  # revisions seen fully ready
    fatal: dict[int, str] = field(default_factory=dict)
    last_error: str | None = None
    steady: DeploymentObservation | None = None  # last observation while fully ready
    steady_at: float = -math.inf
    artifacts: frozenset[tuple[int, UUID]] = frozenset()  # revisions the Secret covers
    artifacts_signed_at: float = -math.inf


class KubernetesBackend:
    name = "kubernetes"

    def __init__(
        self,
        helm: HelmPort,
        kube: KubernetesPort,
        config: KubernetesSettings,
        artifacts: ArtifactAccess,
        *,
        elector: LeaderElector | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.helm = helm
        self.kube = kube
        self.tenants = KubernetesTenants(kube, config)
        self.config = config
        self.artifacts = artifacts
        self.elector = elector  # None: this process alone drives the cluster
        self.clock = clock
        self._leading = False
        self.specs: dict[UUID, DeploymentSpec] = {}
        self.releases: dict[UUID, _Release] = {}
        self._tenants: set[UUID] = set()
        self._events: dict[UUID, list[tuple[str, str]]] = defaultdict(list)
        self._last_scan = -math.inf
        self._op = asyncio.Lock()
        self.on_change: Callable[[], None] | None = None

    # -- lifecycle -----------------------------------------------------------------------------
    @property
    def active(self) -> bool:
        """Whether this process drives the cluster now: it holds the Lease (renewed within the
        renew deadline), or leader election is off."""
        return self.elector is None or self.elector.is_leader

    async def start(self) -> None:
        await self.kube.start()
        await self.helm.start()
        self._last_scan = -math.inf  # the first pass adopts what the cluster already runs
        if self.elector is not None:
            self.elector.on_change = self._wake
            self.elector.start()

    async def close(self) -> None:
        # Releases keep serving: a deployer restart is not an outage. Stepping down lets a
        # standby replica take over at once.
        if self.elector is not None:
            await self.elector.stop()
        await self.kube.close()

    def _wake(self) -> None:
        if self.on_change is not None:
            self.on_change()

    def _leads(self) -> bool:
        """Whether this process may act now; on taking over, what it knew is dropped first."""
        if not self.active:
            self._leading = False
            return False
        if not self._leading:
            self._forget_everything()
            self._leading = True
        return True

    def _forget_everything(self) -> None:
        """What this process knew may be stale after another replica led: adopt afresh."""
        self.releases.clear()
        self._tenants.clear()
        self._events.clear()
        self._last_scan = -math.inf

    # -- the port ------------------------------------------------------------------------------
    async def deploy(self, spec: DeploymentSpec) -> DeploymentObservation:
        async with self._op:
            if not self._leads():
                return DeploymentObservation(deployment_id=spec.deployment_id)
            self.specs[spec.deployment_id] = spec
            return await self._step(spec, other_pods(self.specs.values(), self.config))

    async def scale(self, deployment_id: UUID, replicas: int) -> DeploymentObservation:
        spec = self.specs.get(deployment_id)
        if spec is None:
            raise KeyError(f"deployment {deployment_id} is not deployed here")
        return await self.deploy(replace(spec, target=replace(spec.target, replicas=replicas)))

    async def undeploy(self, deployment_id: UUID) -> None:
        async with self._op:
            self.specs.pop(deployment_id, None)
            known = self.releases.get(deployment_id)
            namespaces = [known.namespace] if known else []
            if not namespaces:
                # Not seen by this process (e.g. deleted right after a restart): ask Helm.
                name = release_name(deployment_id)
                namespaces = [
                    r.namespace for r in await self.helm.list_releases() if r.name == name
                ]
            for namespace in namespaces:
                await self.helm.uninstall(release_name(deployment_id), namespace)
                # After the pods are gone: their URLs go with them.
                await self.kube.delete("Secret", namespace, artifacts_secret_name(deployment_id))
            self._forget(deployment_id)

    async def status(self, deployment_id: UUID) -> DeploymentObservation:
        spec = self.specs.get(deployment_id)
        if spec is None:
            return DeploymentObservation(deployment_id=deployment_id)
        async with self._op:
            return await self._observe(spec, self._release(spec))

    async def reconcile(self, specs: Sequence[DeploymentSpec]) -> dict[UUID, DeploymentObservation]:
        async with self._op:
            if not self._leads():
                return {}  # a standby: the leader converges the cluster
            self.specs = {s.deployment_id: s for s in specs}
            if self.clock() - self._last_scan >= self.config.release_scan_interval:
                await self._scan()
            owner_pods = other_pods(specs, self.config)
            result = {}
            for s in specs:
                if not self.active:
                    break  # lost the Lease mid-pass: the reconcile service discards this pass
                result[s.deployment_id] = await self._step(s, owner_pods)
            ready = sum(len(o.ready(self.specs[d].target.revision)) for d, o in result.items())
            REPLICAS.labels(self.name, ReplicaStatus.READY.value).set(ready)
            return result

    def next_pass_in(self, idle: float) -> float:
        if not self.active:
            return idle  # the elector wakes the loop when this process takes over
        for rel in self.releases.values():
            if rel.revision is not None and rel.revision not in rel.ready | rel.fatal.keys():
                return min(idle, self.config.poll_interval)  # a rollout to watch
        return idle

    # -- tenants -------------------------------------------------------------------------------
    async def provision_tenant(self, user_id: UUID) -> None:
        """`UserRegistered`: the tenant's namespace with its quota and policies."""
        with _classified(f"provisioning tenant {user_id}"):
            await self.tenants.provision(user_id)
        self._tenants.add(user_id)

    async def retire_tenant(self, user_id: UUID) -> None:
        """`UserDeleted`, after the grace period: delete the namespace `user-{id}` and with it
        everything this backend created for the tenant. Idempotent; a namespace already gone
        is fine. Refused (transient) while the tenant still has live deployments here: the
        next pass would provision the namespace again for them."""
        live = [s for s in self.specs.values() if s.owner_id == user_id]
        if live:
            raise TransientError(
                f"tenant {user_id} still has {len(live)} live deployment(s); retire it once "
                "they are stopped"
            )
        with _classified(f"retiring tenant {user_id}"):
            await self.tenants.retire(user_id)
        self._tenants.discard(user_id)
        namespace = self.tenants.namespace(user_id)
        for deployment_id in [d for d, r in self.releases.items() if r.namespace == namespace]:
            self._forget(deployment_id)

    # -- converging ----------------------------------------------------------------------------
    def _release(self, spec: DeploymentSpec) -> _Release:
        rel = self.releases.get(spec.deployment_id)
        if rel is None:
            rel = _Release(namespace_for(spec.owner_id, self.config.namespace_prefix))
            self.releases[spec.deployment_id] = rel
        return rel

    async def _step(
        self, spec: DeploymentSpec, owner_pods: dict[UUID, OtherPods]
    ) -> DeploymentObservation:
        rel = self._release(spec)
        revision = spec.target.revision
        try:
            if revision not in rel.fatal:
                await self._apply(spec, rel, owner_pods.get(spec.deployment_id, OtherPods()))
            obs = await self._observe(spec, rel)
        except BackendError as exc:
            obs = DeploymentObservation(deployment_id=spec.deployment_id)
            message = str(exc)
            transient = _transient(exc)
            if transient or revision in rel.ready:
                # Retried by the next pass; reported once per distinct error, not every pass.
                # A revision that already runs is never failed by a refused change (a scale
                # forbidden until an operator fixes RBAC): it keeps serving and is retried.
                if message != rel.last_error:
                    kind = "backend_retry" if transient else "backend_refused"
                    self._event(spec.deployment_id, kind, message[:500])
                rel.last_error = message
                obs.last_error[revision] = message
            else:
                rel.fatal[revision] = message
                self._event(spec.deployment_id, "backend_failed", message[:500])
                obs.fatal[revision] = message
            obs.events = self._events.pop(spec.deployment_id, [])
            return obs
        rel.last_error = None
        return obs

    async def _apply(self, spec: DeploymentSpec, rel: _Release, others: OtherPods) -> None:
        target = spec.target
        if spec.owner_id not in self._tenants:
            # Normally done on UserRegistered; repeated here (server-side apply: a no-op when
            # nothing changed) so users who registered before this backend was on work too.
            await self.tenants.provision(spec.owner_id)
            self._tenants.add(spec.owner_id)
        await self._artifacts(spec, rel)
        values = chart_values(
            spec, target, self.config, other_pods=others.desired, other_most=others.most
        )
        digest = values_digest(values)
        name = release_name(spec.deployment_id)
        if rel.digest is None:
            await self._adopt(spec, rel, name, digest)
        if rel.digest == digest:
            return
        await self.helm.install_or_upgrade(
            name,
            rel.namespace,
            values,
            description=f"kubeserve revision {target.revision} ({target.version_tag})",
        )
        if rel.revision != target.revision:
            rel.rollout_started = self.clock()
        rel.digest, rel.revision = digest, target.revision
        rel.steady = None  # the release changed: read it on this very pass
        self._event(
            spec.deployment_id,
            "release_applied",
            f"helm upgrade --install {name} in {rel.namespace}: revision {target.revision} "
            f"({target.version_tag}), {target.replicas} replica(s)"
            + autoscaling_note(values, spec.autoscaling),
        )

    async def _artifacts(self, spec: DeploymentSpec, rel: _Release) -> None:
        """The deployment's presigned URLs: applied when the revisions to cover change, and
        signed again when half of their validity is gone (so a pod starting just before the
        next signing still has hours left)."""
        needed = revisions_of(spec)
        age = self.clock() - rel.artifacts_signed_at
        if rel.artifacts == needed and age < self.config.artifact_url_ttl_seconds / 2:
            return
        secret = await self.artifacts.secret(spec, rel.namespace)
        await self.kube.apply([secret])
        rel.artifacts, rel.artifacts_signed_at = needed, self.clock()

    async def _adopt(self, spec: DeploymentSpec, rel: _Release, name: str, digest: str) -> None:
        """First sight of a release in this process (start, or a scan found it missing)."""
        current = await self.helm.status(name, rel.namespace)
        if current is None:
            return  # installed by the caller
        if current.status == "pending-install":
            # A deployer died mid-install: nothing to roll back to; start over.
            await self.helm.uninstall(name, rel.namespace)
            self._event(spec.deployment_id, "release_recovered", f"{name} was pending-install")
            return
        if current.status in ("pending-upgrade", "pending-rollback"):
            await self.helm.rollback(name, rel.namespace)
            self._event(spec.deployment_id, "release_recovered", f"{name} was {current.status}")
            return
        if current.status == "deployed" and values_digest(current.values or {}) == digest:
            rel.digest, rel.revision = digest, spec.target.revision
            rel.rollout_started = self.clock()
            self._event(
                spec.deployment_id,
                "release_adopted",
                f"adopted {name} (helm revision {current.revision}) without changes",
            )

    async def _observe(self, spec: DeploymentSpec, rel: _Release) -> DeploymentObservation:
        target = spec.target
        if (
            rel.steady is not None
            and self.clock() - rel.steady_at < self.config.observe_interval
            and not self._events.get(spec.deployment_id)
        ):
            return replace(rel.steady, events=[])
        obs = await self._read(spec, rel)
        steady = target.revision in rel.ready and len(obs.ready(target.revision)) >= (
            target.replicas
        )
        rel.steady, rel.steady_at = (obs, self.clock()) if steady else (None, -math.inf)
        return obs

    async def _read(self, spec: DeploymentSpec, rel: _Release) -> DeploymentObservation:
        name = release_name(spec.deployment_id)
        target = spec.target
        obs = DeploymentObservation(deployment_id=spec.deployment_id)
        workload = await self.kube.read_deployment(rel.namespace, name)
        pods = await self.kube.list_pods(rel.namespace, f"app.kubernetes.io/instance={name}")
        obs.replicas = self._replica_views(spec, rel, pods)
        reading = read_rollout(target.revision, workload, pods, [])
        if reading.ready < target.replicas and target.revision not in rel.fatal:
            events = await self.kube.list_warning_events(rel.namespace, name)
            reading = read_rollout(target.revision, workload, pods, events)
            elapsed = self.clock() - rel.rollout_started
            fatal = reading.fatal
            if (
                fatal is None
                and target.revision not in rel.ready
                and rel.revision == target.revision
                and elapsed > self.config.rollout_timeout_seconds
            ):
                why = reading.blocked or reading.crash_reason or "; ".join(reading.details)
                fatal = (
                    f"revision {target.revision} not ready within "
                    f"{self.config.rollout_timeout_seconds:g}s ({reading.ready}/{target.replicas} "
                    f"ready): {why or 'no reason reported by the cluster'}"
                )
            if fatal is not None:
                rel.fatal[target.revision] = fatal
                self._event(spec.deployment_id, "rollout_failed", fatal)
            if reading.start_failures:
                obs.start_failures[target.revision] = reading.start_failures
            reason = reading.crash_reason or reading.blocked
            if reason:
                obs.last_error[target.revision] = reason
        elif target.revision not in rel.ready and reading.ready >= target.replicas:
            rel.ready.add(target.revision)
            elapsed_ms = (self.clock() - rel.rollout_started) * 1000
            obs.cold_start[target.revision] = {"rollout_ms": round(elapsed_ms, 2)}
            where = service_url(spec.deployment_id, rel.namespace)
            public = ingress_url(spec.deployment_id, self.config)
            self._event(
                spec.deployment_id,
                "rollout_ready",
                f"revision {target.revision}: {reading.ready} pod(s) ready behind {where}"
                + (f"; ingress {public}" if public else ""),
            )
        for revision, message in rel.fatal.items():
            obs.fatal[revision] = message
        obs.events = self._events.pop(spec.deployment_id, [])
        return obs

    def _replica_views(
        self, spec: DeploymentSpec, rel: _Release, pods: list[PodState]
    ) -> list[ReplicaView]:
        """One view per pod. Every ready pod's endpoint is the Service URL: the Service balances
        across pods, and NetworkPolicies let no one reach pod IPs directly."""
        endpoint = service_url(spec.deployment_id, rel.namespace)
        by_revision: dict[int, list[PodState]] = defaultdict(list)
        for pod in pods:
            if pod.revision is not None:
                by_revision[pod.revision].append(pod)
        views = []
        for revision, group in sorted(by_revision.items()):
            for index, pod in enumerate(sorted(group, key=lambda p: (not p.ready, p.name))):
                if pod.ready:
                    status = ReplicaStatus.READY
                elif pod.problem is not None and (
                    pod.problem.reason == "CrashLoopBackOff" or pod.problem.state == "terminated"
                ):
                    status = ReplicaStatus.CRASHED
                else:
                    status = ReplicaStatus.STARTING
                problem = pod.problem or pod.last_termination
                took = pod.cold_start_ms()
                views.append(
                    ReplicaView(
                        deployment_id=spec.deployment_id,
                        revision=revision,
                        index=index,
                        status=status,
                        endpoint=endpoint if pod.ready else None,
                        restarts=pod.restarts,
                        launcher="kubernetes",  # the replicas table holds 16 characters
                        last_error=(
                            f"{problem.reason}: {problem.message}".rstrip(": ")[:500]
                            if problem is not None
                            else None
                        ),
                        ever_ready=pod.ready,
                        start_id=pod.uid,
                        timings={"pod_ready_ms": took} if took is not None else None,
                    )
                )
        return views

    # -- scanning ------------------------------------------------------------------------------
    async def _scan(self) -> None:
        """Compare the cluster's `kubeserve-*` releases with the desired deployments: forget
        what vanished (the next step reinstalls it) and uninstall releases nobody wants."""
        releases = await self.helm.list_releases()
        self._last_scan = self.clock()
        present: set[UUID] = set()
        for release in releases:
            deployment_id = deployment_of(release.name)
            if deployment_id is None or not release.namespace.startswith(
                self.config.namespace_prefix
            ):
                continue  # not ours
            present.add(deployment_id)
            if deployment_id not in self.specs:
                log.info("uninstalling orphan release %s/%s", release.namespace, release.name)
                await self.helm.uninstall(release.name, release.namespace)
                await self.kube.delete(
                    "Secret", release.namespace, artifacts_secret_name(deployment_id)
                )
                self._forget(deployment_id)
        for deployment_id, spec in self.specs.items():
            rel = self.releases.get(deployment_id)
            if deployment_id not in present and rel is not None and rel.digest is not None:
                self._event(
                    deployment_id,
                    "release_missing",
                    f"release {release_name(deployment_id)} is gone from the cluster; "
                    "installing it again",
                )
                rel.digest, rel.steady = None, None
                rel.ready.discard(spec.target.revision)
                rel.rollout_started = self.clock()

    # -- bookkeeping ---------------------------------------------------------------------------
    def _event(self, deployment_id: UUID, kind: str, message: str) -> None:
        self._events[deployment_id].append((kind, message))

    def _forget(self, deployment_id: UUID) -> None:
        self.releases.pop(deployment_id, None)
        self._events.pop(deployment_id, None)
