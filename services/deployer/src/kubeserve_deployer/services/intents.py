"""Consumer use cases of the deployer worker: `DeployRequested`, `DeploymentScaled` and
`UndeployRequested` record the worker's acceptance of the intent in the inbox transaction and
wake the reconcile loop, which does the slow work (fetching, starting, health-checking) outside
any broker delivery - so no delivery is held past the consumer timeout.

State checks make them idempotent beyond the inbox: an event about a deleted deployment or a
superseded revision changes nothing.
"""

from __future__ import annotations

from kubeserve_common.db.base import utcnow
from kubeserve_common.db.uow import UnitOfWork
from kubeserve_common.events.catalog import DeploymentScaled, DeployRequested, UndeployRequested

from kubeserve_deployer.domain.deployments import DeploymentStatus
from kubeserve_deployer.repositories.deployments import DeploymentRepository, EventRepository


class IntentService:
    async def deploy_requested(self, uow: UnitOfWork, event: DeployRequested) -> None:
        # Locked: the reconcile loop may mark the revision Running meanwhile (a fast backend
        # is ready before this event is consumed); reading it unlocked would overwrite that
        # with Deploying, and the loop would never write it again.
        d = await DeploymentRepository(uow.session).get_live(event.deployment_id, for_update=True)
        if d is None or d.owner_id != event.owner_id or d.deleting:
            return
        if event.revision != d.revision or d.status != DeploymentStatus.PENDING.value:
            return  # superseded by a newer revision, or already being worked on
        d.status = DeploymentStatus.DEPLOYING.value
        d.updated_at = utcnow()
        await EventRepository(uow.session).record(
            d.id, "deploying", f"worker started revision {event.revision}"
        )

    async def scaled(self, uow: UnitOfWork, event: DeploymentScaled) -> None:
        d = await DeploymentRepository(uow.session).get_live(event.deployment_id)
        if d is None or d.owner_id != event.owner_id or d.deleting:
            return
        # The row holds the latest desired count (scale events may arrive out of order); the
        # reconcile loop converges to it.
        await EventRepository(uow.session).record(
            d.id, "scaling", f"worker scaling to {d.desired_replicas} replica(s)"
        )

    async def undeploy_requested(self, uow: UnitOfWork, event: UndeployRequested) -> None:
        d = await DeploymentRepository(uow.session).get_live(event.deployment_id)
        if d is None or d.owner_id != event.owner_id:
            return
        if not d.deleting:  # the API sets it; a replayed event must not resurrect anything
            d.deleting = True
            d.status = DeploymentStatus.STOPPED.value
        await EventRepository(uow.session).record(d.id, "stopping", "worker stopping replicas")
