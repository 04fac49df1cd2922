"""Tenant use cases of the deployer worker: `UserRegistered` provisions the user's tenant on a
backend that has tenants to provision (the kubernetes backend: a namespace with its quota and
policies; idempotent: the inbox claim, plus server-side apply underneath).

Provisioning talks to the cluster inside the inbox transaction on purpose: it is a handful of
bounded API calls, and a failure rolls the claim back so the event is redelivered. The backend
classifies its failures for the consumer (TransientError retries; PermanentError, e.g. a missing
RBAC right, dead-letters: the backend provisions again before the user's first deploy anyway).
"""

from __future__ import annotations

from typing import Protocol
from uuid import UUID

from kubeserve_common.db.uow import UnitOfWork
from kubeserve_common.events.catalog import UserRegistered


class TenantProvisioner(Protocol):
    async def provision_tenant(self, user_id: UUID) -> None:
        """Create or update the tenant's isolated space; raises Transient/PermanentError."""


class TenantService:
    def __init__(self, provisioner: TenantProvisioner | None) -> None:
        self.provisioner = provisioner  # None: the backend has no tenants to provision

    async def user_registered(self, uow: UnitOfWork, event: UserRegistered) -> None:
        if self.provisioner is not None:
            await self.provisioner.provision_tenant(event.user_id)
