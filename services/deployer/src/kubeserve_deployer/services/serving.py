"""For the gateway's Prometheus discovery (internal): every live deployment with ready replicas,
with the labels its metrics are grouped by (tenant, deployment, version)."""

from __future__ import annotations

from kubeserve_common.contracts.deployer import ServingDeployment
from kubeserve_common.db.uow import UnitOfWorkFactory

from kubeserve_deployer.repositories.deployments import DeploymentRepository, RevisionRepository


async def serving_deployments(uow_factory: UnitOfWorkFactory) -> list[ServingDeployment]:
    """The `/internal/serving` contract models themselves (frozen), answered as they are."""
    async with uow_factory.reading() as uow:
        live = [
            d
            for d in await DeploymentRepository(uow.session).live()
            if d.endpoints and not d.deleting
        ]
        revisions = await RevisionRepository(uow.session).for_deployments([d.id for d in live])
    tags = {(r.deployment_id, r.revision): r.version_tag for r in revisions}
    found = []
    for d in live:
        revision = d.serving_revision or d.revision
        found.append(
            ServingDeployment(
                deployment_id=d.id,
                owner_id=d.owner_id,
                name=d.name,
                version=tags.get((d.id, revision), ""),
                revision=revision,
                endpoints=tuple(d.endpoints),
            )
        )
    return sorted(found, key=lambda s: str(s.deployment_id))
