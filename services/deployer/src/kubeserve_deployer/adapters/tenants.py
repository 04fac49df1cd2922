"""The tenant-provisioning port (a namespace per user, isolated) and its Kubernetes adapter,
which applies `domain.tenancy.tenant_objects` through the `KubernetesPort`.

Server-side apply makes provisioning idempotent: applying the same objects again is a no-op for
the API server, so `UserRegistered` redelivered, or provisioning re-run before a deploy, changes
nothing.
"""

from __future__ import annotations

import logging
from typing import Protocol
from uuid import UUID

from kubeserve_deployer.adapters.kubernetes import KubernetesPort
from kubeserve_deployer.domain.tenancy import TenancyConfig, namespace_for, tenant_objects

log = logging.getLogger(__name__)


class TenantProvisioner(Protocol):
    async def provision(self, user_id: UUID) -> str:
        """Create or update the tenant's namespace and its isolation; returns the namespace."""

    async def remove(self, user_id: UUID) -> None:
        """Delete the tenant's namespace (and so everything running in it)."""


class KubernetesTenantProvisioner:
    def __init__(self, kube: KubernetesPort, config: TenancyConfig) -> None:
        self.kube = kube
        self.config = config

    def namespace(self, user_id: UUID) -> str:
        return namespace_for(user_id, self.config.namespace_prefix)

    async def provision(self, user_id: UUID) -> str:
        objects = tenant_objects(user_id, self.config)
        await self.kube.apply(objects)
        namespace = self.namespace(user_id)
        log.info("tenant provisioned", extra={"namespace": namespace, "objects": len(objects)})
        return namespace

    async def remove(self, user_id: UUID) -> None:
        await self.kube.delete_namespace(self.namespace(user_id))
