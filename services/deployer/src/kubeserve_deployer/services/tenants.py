"""Tenant use cases of the deployer worker: `UserRegistered` provisions the user's namespace on
the kubernetes backend (idempotent: the inbox claim, plus server-side apply underneath).

Provisioning talks to the cluster inside the inbox transaction on purpose: it is a handful of
bounded API calls, and a failure rolls the claim back so the event is redelivered. Cluster
errors are classified for the consumer: 5xx/409/timeouts retry, 403/422 dead-letter (a missing
RBAC right or an invalid setting needs an operator; the backend provisions again before the
user's first deploy anyway).
"""

from __future__ import annotations

import logging
from uuid import UUID

from kubeserve_common.db.uow import UnitOfWork
from kubeserve_common.errors import PermanentError, TransientError
from kubeserve_common.events.catalog import UserRegistered

from kubeserve_deployer.adapters.kubernetes import ClusterError
from kubeserve_deployer.adapters.tenants import TenantProvisioner

log = logging.getLogger(__name__)


class TenantService:
    def __init__(self, provisioner: TenantProvisioner | None) -> None:
        self.provisioner = provisioner  # None: the local backend has no tenants to provision

    async def user_registered(self, uow: UnitOfWork, event: UserRegistered) -> None:
        if self.provisioner is None:
            return
        await self._guard("provision", self.provisioner.provision(event.user_id))

    async def remove_user(self, user_id: UUID) -> None:
        """Delete the user's namespace and everything in it. No event triggers this yet: the
        platform has no `UserDeleted` (an operator or a future consumer calls it)."""
        if self.provisioner is None:
            return
        await self._guard("remove", self.provisioner.remove(user_id))

    @staticmethod
    async def _guard(what: str, call: object) -> None:
        try:
            await call  # type: ignore[misc]
        except ClusterError as exc:
            log.warning("tenant %s failed", what, extra={"error": str(exc)[:500]})
            if exc.transient:
                raise TransientError(f"tenant {what}: {exc}") from exc
            raise PermanentError(f"tenant {what}: {exc}") from exc
