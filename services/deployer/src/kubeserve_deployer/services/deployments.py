"""Deployment use cases of the public API (create, list, get, scale/update, rollback, delete) and
the gateway's internal route lookup. Each owns its unit of work; every state change and its
event share the transaction (outbox). The worker does the slow part (see `reconciler`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

from kubeserve_common.contracts.deployer import DeploymentRoute
from kubeserve_common.db.base import utcnow
from kubeserve_common.db.uow import UnitOfWork, UnitOfWorkFactory
from kubeserve_common.errors import Conflict, NotFound, ValidationFailed
from kubeserve_common.events.catalog import (
    DeploymentScaled,
    DeployRequested,
    EventPayload,
    UndeployRequested,
)
from kubeserve_common.events.envelope import CloudEvent

from kubeserve_deployer.domain.autoscaling import initial_replicas, policy_from
from kubeserve_deployer.domain.cold_start import Prediction
from kubeserve_deployer.domain.deployments import (
    DeploymentStatus,
    Quota,
    QuotaExceeded,
    VersionStatus,
    runtime_name,
)
from kubeserve_deployer.repositories.deployments import (
    DeploymentRepository,
    EventRepository,
    ReplicaRepository,
    RevisionRepository,
)
from kubeserve_deployer.repositories.orm import (
    DeploymentEventRecord,
    DeploymentRecord,
    ReplicaRecord,
    RevisionRecord,
    VersionProjection,
)
from kubeserve_deployer.repositories.versions import ModelRepository, VersionRepository
from kubeserve_deployer.services.cold_start import ColdStartService

SERVICE = "deployer"


@dataclass
class DeploymentView:
    deployment: DeploymentRecord
    version_tag: str | None
    events: list[DeploymentEventRecord]
    revisions: list[RevisionRecord]
    replicas: list[ReplicaRecord]
    predicted_cold_start: Prediction | None = None


def describe(autoscaling: dict[str, Any]) -> str:
    text = (
        f"{autoscaling['min_replicas']}..{autoscaling['max_replicas']} replicas, "
        f"target {autoscaling['target_concurrency']:g} in flight"
    )
    if autoscaling.get("scale_to_zero_after_s") is not None:
        text += f", to zero after {autoscaling['scale_to_zero_after_s']:g}s idle"
    return text


def event_for(payload: EventPayload, deployment_id: UUID, owner_id: UUID) -> CloudEvent:
    return CloudEvent.create(
        payload, service=SERVICE, subject=f"deployments/{deployment_id}", tenant_id=str(owner_id)
    )


class DeploymentService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        quota: Quota,
        *,
        public_url: str,
        cold_starts: ColdStartService,
        recent_events: int = 20,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self.uow = uow
        self.cold_starts = cold_starts
        self.quota = quota
        self.public_url = public_url.rstrip("/")
        self.recent_events = recent_events
        # Wakes an in-process worker at once; a separate worker learns from the event instead.
        self.on_change = on_change or (lambda: None)

    def url_for(self, deployment_id: UUID) -> str:
        return f"{self.public_url}/api/v1/predict/{deployment_id}"

    # -- reads ---------------------------------------------------------------------------------
    async def list(
        self, owner_id: UUID, *, limit: int, offset: int, only: Sequence[UUID] | None = None
    ) -> tuple[list[DeploymentView], int]:
        async with self.uow.reading() as uow:
            rows, total = await DeploymentRepository(uow.session).page(
                owner_id, limit, offset, only=only
            )
            model = await self.cold_starts.estimates(uow)
            views = [await self._view(uow, d, with_history=False, model=model) for d in rows]
        return views, total

    async def get(self, owner_id: UUID, deployment_id: UUID) -> DeploymentView:
        async with self.uow.reading() as uow:
            return await self._view(uow, await self._owned(uow, owner_id, deployment_id))

    async def route(self, deployment_id: UUID) -> DeploymentRoute:
        """For the gateway (internal): endpoints of the ready replicas, by deployment id alone -
        the gateway checks the caller's right to the deployment against `owner_id`. Returns the
        route's contract model itself (frozen), which the internal route answers as is."""
        async with self.uow() as uow:
            deployments = DeploymentRepository(uow.session)
            d = await deployments.get_live(deployment_id)
            if d is None or d.deleting:
                raise NotFound(f"deployment {deployment_id} not found")
            scaled_to_zero = bool(d.autoscaling) and d.desired_replicas == 0
            # Scaled to zero and the tenant's other deployments hold the whole quota: a request
            # cannot wake it, so the gateway answers 503 at once instead of holding it.
            blocked = None
            if scaled_to_zero:
                others = await deployments.replicas_in_use(d.owner_id, excluding=d.id)
                if self.quota.headroom(others) < 1:
                    blocked = (
                        f"deployment {d.id} is scaled to zero and cannot wake: your other "
                        f"deployments use {others} replicas and your quota allows "
                        f"{self.quota.max_replicas} ({self.quota.max_cpu:g} CPU, "
                        f"{self.quota.max_memory_mib} MiB); scale one down or delete one"
                    )
            return DeploymentRoute(
                deployment_id=d.id, owner_id=d.owner_id, status=d.status, revision=d.revision,
                ready_replicas=d.ready_replicas, endpoints=tuple(d.endpoints),
                scaled_to_zero=scaled_to_zero, wake_blocked=blocked,
            )  # fmt: skip

    # -- writes --------------------------------------------------------------------------------
    async def create(
        self,
        owner_id: UUID,
        version_id: UUID,
        replicas: int | None,
        name: str | None,
        autoscaling: dict[str, Any] | None = None,
    ) -> DeploymentView:
        if autoscaling is not None:
            self._check_autoscaling(autoscaling)
            replicas = initial_replicas(policy_from(autoscaling))
        replicas = 1 if replicas is None else replicas
        async with self.uow() as uow:
            version = await self._ready_version(uow, owner_id, version_id)
            deployments = DeploymentRepository(uow.session)
            await deployments.lock_owner(owner_id)
            self.quota.check(await deployments.replicas_in_use(owner_id), replicas)
            if name is None:
                model = await ModelRepository(uow.session).get_owned(owner_id, version.model_id)
                name = runtime_name(model.name if model else f"model-{version.version_tag}")
            d = DeploymentRecord(
                id=uuid4(),
                owner_id=owner_id,
                model_id=version.model_id,
                version_id=version.id,
                name=name,
                status=DeploymentStatus.PENDING.value,
                revision=1,
                serving_revision=None,
                desired_replicas=replicas,
                autoscaling=autoscaling,
                ready_replicas=0,
                endpoints=[],
                deleting=False,
                url="",
                created_at=utcnow(),
                updated_at=utcnow(),
            )
            d.url = self.url_for(d.id)
            await deployments.add(d)
            await self._new_revision(uow, d, version, "deploy")
            view = await self._view(uow, d)
            await uow.commit()
        self.on_change()
        return view

    async def update(
        self,
        owner_id: UUID,
        deployment_id: UUID,
        *,
        replicas: int | None = None,
        version_id: UUID | None = None,
        autoscaling: dict[str, Any] | None = None,
    ) -> DeploymentView:
        """Scale (`replicas`: a fixed count, autoscaling off), change the autoscaling settings
        (`autoscaling`: on) and/or move to another version of the same model (a new
        revision)."""
        if autoscaling is not None:
            self._check_autoscaling(autoscaling)
        async with self.uow() as uow:
            deployments = DeploymentRepository(uow.session)
            await deployments.lock_owner(owner_id)
            d = await self._owned(uow, owner_id, deployment_id, for_update=True)
            self._not_deleting(d)
            new_replicas = replicas if replicas is not None else d.desired_replicas
            if autoscaling is not None:
                policy = policy_from(autoscaling)
                # The current count carries on within the new bounds; the autoscaler moves it.
                new_replicas = min(
                    max(d.desired_replicas, policy.min_replicas), policy.max_replicas
                )
                if autoscaling != d.autoscaling:
                    await EventRepository(uow.session).record(
                        d.id, "autoscaling", f"autoscaling {describe(autoscaling)}"
                    )
                d.autoscaling = autoscaling
            elif replicas is not None and d.autoscaling is not None:
                d.autoscaling = None
                await EventRepository(uow.session).record(
                    d.id, "autoscaling", f"autoscaling off: a fixed {replicas} replica(s)"
                )
            if version_id is not None and version_id != d.version_id:
                version = await self._ready_version(uow, owner_id, version_id)
                if version.model_id != d.model_id:
                    raise ValidationFailed(
                        f"version {version_id} belongs to another model; a deployment serves "
                        "versions of one model"
                    )
                if new_replicas != d.desired_replicas:
                    self._check_quota_change(
                        await deployments.replicas_in_use(owner_id, excluding=d.id), new_replicas
                    )
                d.desired_replicas = new_replicas
                await self._new_revision(uow, d, version, "update")
            elif new_replicas != d.desired_replicas:
                self._check_quota_change(
                    await deployments.replicas_in_use(owner_id, excluding=d.id), new_replicas
                )
                previous, d.desired_replicas = d.desired_replicas, new_replicas
                d.updated_at = utcnow()
                await EventRepository(uow.session).record(
                    d.id, "scale_requested", f"scale from {previous} to {new_replicas} replicas"
                )
                await uow.publish(
                    event_for(
                        DeploymentScaled(
                            deployment_id=d.id, owner_id=owner_id, replicas=new_replicas
                        ),
                        d.id,
                        owner_id,
                    )
                )
            view = await self._view(uow, d)
            await uow.commit()
        self.on_change()
        return view

    async def rollback(
        self, owner_id: UUID, deployment_id: UUID, revision: int | None
    ) -> DeploymentView:
        """A new revision running the version of `revision` (default: the one before the
        current revision)."""
        async with self.uow() as uow:
            d = await self._owned(uow, owner_id, deployment_id, for_update=True)
            self._not_deleting(d)
            wanted = revision if revision is not None else d.revision - 1
            if wanted < 1:
                raise Conflict(
                    f"deployment {deployment_id} has no revision before {d.revision} to roll "
                    "back to"
                )
            if wanted == d.revision:
                raise Conflict(f"deployment {deployment_id} is already at revision {wanted}")
            old = await RevisionRepository(uow.session).get(d.id, wanted)
            if old is None:
                raise NotFound(f"deployment {deployment_id} has no revision {wanted}")
            version = await self._ready_version(uow, owner_id, old.version_id)
            await self._new_revision(uow, d, version, f"rollback to {wanted}")
            view = await self._view(uow, d)
            await uow.commit()
        self.on_change()
        return view

    async def delete(self, owner_id: UUID, deployment_id: UUID) -> DeploymentView:
        async with self.uow() as uow:
            d = await self._owned(uow, owner_id, deployment_id, for_update=True)
            if not d.deleting:
                d.deleting = True
                d.status = DeploymentStatus.STOPPED.value
                d.updated_at = utcnow()
                await EventRepository(uow.session).record(d.id, "delete_requested", "deleting")
                await uow.publish(
                    event_for(
                        UndeployRequested(deployment_id=d.id, owner_id=owner_id), d.id, owner_id
                    )
                )
            view = await self._view(uow, d)
            await uow.commit()
        self.on_change()
        return view

    # -- helpers -------------------------------------------------------------------------------
    async def _owned(
        self, uow: UnitOfWork, owner_id: UUID, deployment_id: UUID, *, for_update: bool = False
    ) -> DeploymentRecord:
        repo = DeploymentRepository(uow.session)
        d = await (
            repo.get_owned_for_update(owner_id, deployment_id)
            if for_update
            else repo.get_owned(owner_id, deployment_id)
        )
        if d is None:
            raise NotFound(f"deployment {deployment_id} not found")
        return d

    @staticmethod
    def _not_deleting(d: DeploymentRecord) -> None:
        if d.deleting:
            raise Conflict(f"deployment {d.id} is being deleted")

    def _check_quota_change(self, others: int, replicas: int) -> None:
        self.quota.check(others, replicas)

    def _check_autoscaling(self, autoscaling: dict[str, Any]) -> None:
        """A maximum the tenant's whole quota could never run is refused (409) up front; below
        it, the autoscaler stops at what the user's other deployments leave."""
        most = self.quota.headroom(0)
        wanted = int(autoscaling["max_replicas"])
        if wanted > most:
            raise QuotaExceeded(
                f"autoscaling max_replicas {wanted} is beyond your quota: at most {most} "
                f"replicas fit ({self.quota.max_replicas} replicas, {self.quota.max_cpu:g} CPU "
                f"at {self.quota.replica_cpu:g} each, {self.quota.max_memory_mib} MiB at "
                f"{self.quota.replica_memory_mib} MiB each)",
                details={"max_replicas": wanted, "quota_replicas": most},
            )

    async def _ready_version(
        self, uow: UnitOfWork, owner_id: UUID, version_id: UUID
    ) -> VersionProjection:
        version = await VersionRepository(uow.session).get_owned(owner_id, version_id)
        if version is None:
            # Unknown and another tenant's version look the same (no existence leak).
            raise NotFound(f"version {version_id} not found")
        if version.status != VersionStatus.READY.value:
            detail = f" ({version.failure_reason})" if version.failure_reason else ""
            state = (
                "still building"
                if version.status == VersionStatus.UPLOADED.value
                else ("failed to build")
            )
            raise Conflict(
                f"version {version.version_tag} ({version_id}) is {state}{detail}; only Ready "
                "versions can be deployed",
                code="version_not_ready",
                details={"version_status": version.status},
            )
        if not version.artifact_uri:
            # Built, but the upload event has not reached the deployer yet (events of two
            # services may arrive out of order): momentary.
            raise Conflict(
                f"version {version_id} is not known to the deployer yet; retry shortly",
                code="version_not_ready",
                headers={"Retry-After": "1"},
            )
        return version

    async def _new_revision(
        self, uow: UnitOfWork, d: DeploymentRecord, version: VersionProjection, reason: str
    ) -> None:
        if reason != "deploy":
            d.revision += 1
        d.version_id = version.id
        d.status = DeploymentStatus.PENDING.value
        d.failure_reason = None
        d.updated_at = utcnow()
        await RevisionRepository(uow.session).add(
            RevisionRecord(
                deployment_id=d.id,
                revision=d.revision,
                version_id=version.id,
                version_tag=version.version_tag,
                replicas=d.desired_replicas,
                reason=reason[:32],
                created_at=utcnow(),
            )
        )
        await EventRepository(uow.session).record(
            d.id,
            "deploy_requested",
            f"revision {d.revision}: {reason}, version {version.version_tag}, "
            f"{d.desired_replicas} replica(s)",
        )
        await uow.publish(
            event_for(
                DeployRequested(
                    deployment_id=d.id,
                    owner_id=d.owner_id,
                    model_id=d.model_id,
                    version_id=version.id,
                    revision=d.revision,
                    replicas=d.desired_replicas,
                    artifact_uri=version.artifact_uri or "",
                    wheelhouse_uri=version.wheelhouse_uri,
                ),
                d.id,
                d.owner_id,
            )
        )

    async def _view(
        self, uow: UnitOfWork, d: DeploymentRecord, *, with_history: bool = True, model: Any = None
    ) -> DeploymentView:
        revisions = await RevisionRepository(uow.session).history(d.id) if with_history else []
        tag = next((r.version_tag for r in revisions if r.revision == d.revision), None)
        if tag is None:
            current = await RevisionRepository(uow.session).get(d.id, d.revision)
            tag = current.version_tag if current else None
        events = (
            await EventRepository(uow.session).recent(d.id, self.recent_events)
            if with_history
            else []
        )
        replicas = await ReplicaRepository(uow.session).for_deployment(d.id) if with_history else []
        model = model or await self.cold_starts.estimates(uow)
        predicted = await self.cold_starts.for_deployment(uow, d, replicas, model)
        return DeploymentView(d, tag, events, revisions, replicas, predicted)
