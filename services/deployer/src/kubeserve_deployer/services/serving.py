"""For the gateway's Prometheus discovery (internal): every live deployment with ready replicas,
with the labels its metrics are grouped by (tenant, deployment, version)."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from kubeserve_common.db.uow import UnitOfWorkFactory

from kubeserve_deployer.repositories.deployments import DeploymentRepository, RevisionRepository


@dataclass(frozen=True)
class ServingDeployment:
    deployment_id: UUID
    owner_id: UUID
    name: str
    version: str  # the version tag of the serving revision (`v3`), as the runtime labels it
    revision: int
    endpoints: list[str]


async def serving_deployments(uow_factory: UnitOfWorkFactory) -> list[ServingDeployment]:
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
                d.id, d.owner_id, d.name, tags.get((d.id, revision), ""), revision,
                list(d.endpoints),
            )
        )  # fmt: skip
    return sorted(found, key=lambda s: str(s.deployment_id))
