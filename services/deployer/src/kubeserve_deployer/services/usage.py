"""Use case: a tenant's usage against its quota (`GET /usage`)."""

from __future__ import annotations

from kubeserve_common.db.uow import UnitOfWorkFactory
from kubeserve_common.security.principal import Principal

from kubeserve_deployer.domain.deployments import Quota
from kubeserve_deployer.domain.usage import DeploymentUse, UsageReport, usage_report
from kubeserve_deployer.repositories.orm import DeploymentRecord
from kubeserve_deployer.repositories.usage import UsageRepository


class UsageService:
    def __init__(self, uow: UnitOfWorkFactory, quota: Quota) -> None:
        self.uow = uow
        self.quota = quota

    async def report(self, principal: Principal) -> UsageReport:
        async with self.uow() as uow:
            records = await UsageRepository(uow.session).active(principal.user_id)
            uses = self._uses(records)
        return usage_report(self.quota, uses)

    @staticmethod
    def _uses(records: list[DeploymentRecord]) -> list[DeploymentUse]:
        # Read inside the unit of work: the records expire when it ends.
        return [
            DeploymentUse(
                deployment_id=r.id,
                name=r.name,
                status=r.status,
                desired=r.desired_replicas,
                ready=r.ready_replicas,
                max_replicas=int(r.autoscaling["max_replicas"]) if r.autoscaling else None,
            )
            for r in records
        ]
