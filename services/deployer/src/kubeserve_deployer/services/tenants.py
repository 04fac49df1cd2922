"""Tenant use cases of the deployer worker.

`UserRegistered` provisions the user's tenant on a backend that has tenants to provision (the
kubernetes backend: a namespace with its quota and policies; idempotent: the inbox claim, plus
server-side apply underneath). Provisioning talks to the cluster inside the inbox transaction on
purpose: it is a handful of bounded API calls, and a failure rolls the claim back so the event is
redelivered. The backend classifies its failures for the consumer (TransientError retries;
PermanentError, e.g. a missing RBAC right, dead-letters: the backend provisions again before the
user's first deploy anyway).

`UserDeleted` stops every deployment of the tenant exactly as a `DELETE /deployments/{id}` does
(flag, history entry, `UndeployRequested`; the reconcile loop stops the replicas and publishes
`DeploymentDeleted` once). Then, after the grace period, `retire_when_due` removes what the
backend keeps for the tenant (kubernetes: its namespace). Its state is the event itself: it
waits on the consumer's delayed-retry queue (durable in RabbitMQ), one retry per check interval,
until the grace period has passed and the tenant's deployments are gone - so no table is needed.
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Protocol
from uuid import UUID

from kubeserve_common.db.base import utcnow
from kubeserve_common.db.uow import UnitOfWork
from kubeserve_common.errors import PermanentError, TransientError
from kubeserve_common.events.catalog import UndeployRequested, UserDeleted, UserRegistered
from kubeserve_common.events.envelope import CloudEvent
from pydantic import BaseModel, ConfigDict, Field, model_validator

from kubeserve_deployer.domain.deployments import DeploymentStatus
from kubeserve_deployer.repositories.deployments import DeploymentRepository, EventRepository
from kubeserve_deployer.repositories.orm import DeploymentRecord
from kubeserve_deployer.services.deployments import event_for

# Attempts of the retirement consumer: fixed, because RabbitMQ fixes a queue's delivery limit
# when it declares the queue; the grace period must fit in them (checked at start-up).
RETIRE_MAX_ATTEMPTS = 10_000
_PAGE = 500


class TenantProvisioner(Protocol):
    async def provision_tenant(self, user_id: UUID) -> None:
        """Create or update the tenant's isolated space; raises Transient/PermanentError."""


class TenantRetirer(Protocol):
    async def retire_tenant(self, user_id: UUID) -> None:
        """Remove the tenant's space once its deployments are gone; Transient/PermanentError."""


class TenantRetireSettings(BaseModel):
    """`DeployerSettings.tenant_retire`, read as `KUBESERVE_TENANT_RETIRE_<FIELD>`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    grace_seconds: float = Field(
        default=3600.0,
        ge=0,
        description="Seconds after `UserDeleted` before the tenant's namespace is removed (its "
        "deployments stop at once).",
    )
    check_seconds: float = Field(
        default=60.0,
        gt=0,
        description="Seconds between checks of a pending retirement (the retry delay of the "
        "`tenant-retire` queue: RabbitMQ keeps it per queue, so a change needs the queue "
        "`q.deployer.tenant-retire.retry` deleted first).",
    )

    @model_validator(mode="after")
    def _grace_fits_in_the_attempts(self) -> TenantRetireSettings:
        if math.ceil(self.grace_seconds / self.check_seconds) + 10 > RETIRE_MAX_ATTEMPTS:
            raise ValueError(
                "KUBESERVE_TENANT_RETIRE_GRACE_SECONDS must fit in "
                f"{RETIRE_MAX_ATTEMPTS - 10} checks of KUBESERVE_TENANT_RETIRE_CHECK_SECONDS"
            )
        return self


class TenantService:
    def __init__(
        self,
        provisioner: TenantProvisioner | None,
        retirer: TenantRetirer | None = None,
        *,
        retire: TenantRetireSettings | None = None,
    ) -> None:
        self.provisioner = provisioner  # None: the backend has no tenants to provision
        self.retirer = retirer  # None: nothing to retire (the local backend)
        self.retire = retire or TenantRetireSettings()

    async def user_registered(self, uow: UnitOfWork, event: UserRegistered) -> None:
        if self.provisioner is not None:
            await self.provisioner.provision_tenant(event.user_id)

    async def user_deleted(self, uow: UnitOfWork, event: UserDeleted) -> None:
        """Every live deployment of the tenant is deleted, as its owner would delete it. A
        deployment already being deleted is left alone, so a replay changes nothing."""
        repo = DeploymentRepository(uow.session)
        history = EventRepository(uow.session)
        found: list[DeploymentRecord] = []
        while True:
            rows, total = await repo.page(event.user_id, _PAGE, len(found))
            found += rows
            if not rows or len(found) >= total:
                break
        for d in found:
            # Locked and read again: a concurrent delete (or another UserDeleted) may have
            # flagged it since the page was read.
            await uow.session.refresh(d, with_for_update=True)
            if d.deleting or d.deleted_at is not None:
                continue
            d.deleting = True
            d.status = DeploymentStatus.STOPPED.value
            d.updated_at = utcnow()
            await history.record(d.id, "delete_requested", "deleting: the user was deleted")
            await uow.publish(
                event_for(
                    UndeployRequested(deployment_id=d.id, owner_id=d.owner_id), d.id, d.owner_id
                )
            )

    async def retire_when_due(self, event: CloudEvent, uow: UnitOfWork) -> None:
        """The `tenant-retire` consumer's effect: retire the tenant of a `UserDeleted` once the
        grace period has passed and its deployments are gone; until then a TransientError sends
        the event back to the delayed-retry queue."""
        payload = event.payload()
        if not isinstance(payload, UserDeleted):
            raise PermanentError(f"unexpected event type {event.type}")
        due = event.time + timedelta(seconds=self.retire.grace_seconds)
        if utcnow() < due:
            raise TransientError(
                f"tenant {payload.user_id} is retired after its grace period, at {due.isoformat()}"
            )
        _, live = await DeploymentRepository(uow.session).page(payload.user_id, 1, 0)
        if live:
            raise TransientError(
                f"tenant {payload.user_id} still has {live} deployment(s) stopping; retried"
            )
        if self.retirer is not None:
            await self.retirer.retire_tenant(payload.user_id)
