"""Tenant namespaces on the cluster: provisioning applies `tenancy.tenant_objects` (server-side
apply, so applying the same objects again changes nothing: a redelivered `UserRegistered` or the
check before a tenant's first deploy is a no-op), retirement deletes the namespace `user-{id}`
and with it everything the backend created for the tenant (releases and their Helm records,
artifact Secrets, quota, policies)."""

from __future__ import annotations

import logging
from uuid import UUID

from kubeserve_deployer.backends.kubernetes.cluster import KubernetesPort
from kubeserve_deployer.backends.kubernetes.errors import classified
from kubeserve_deployer.backends.kubernetes.settings import KubernetesSettings
from kubeserve_deployer.backends.kubernetes.tenancy import namespace_for, tenant_objects

log = logging.getLogger(__name__)


class KubernetesTenants:
    def __init__(self, kube: KubernetesPort, config: KubernetesSettings) -> None:
        self.kube = kube
        self.config = config

    def namespace(self, user_id: UUID) -> str:
        return namespace_for(user_id, self.config.namespace_prefix)

    async def provision(self, user_id: UUID) -> str:
        """Create or update the tenant's namespace and its isolation; returns the namespace."""
        objects = tenant_objects(user_id, self.config)
        with classified(f"provisioning tenant {user_id}"):
            await self.kube.apply(objects)
        namespace = self.namespace(user_id)
        log.info("tenant provisioned", extra={"namespace": namespace, "objects": len(objects)})
        return namespace

    async def retire(self, user_id: UUID) -> None:
        """Delete the tenant's namespace; one already gone is not an error. One still
        terminating answers 409, a transient error: the retirement is retried until the
        namespace is really gone (then 404, success)."""
        namespace = self.namespace(user_id)
        with classified(f"retiring tenant {user_id}"):
            await self.kube.delete_namespace(namespace)
        log.info("tenant retired", extra={"namespace": namespace})
