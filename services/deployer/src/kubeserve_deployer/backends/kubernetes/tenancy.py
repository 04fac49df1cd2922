"""The Kubernetes objects of one tenant (namespace `user-{id}` and what isolates it), as plain
dicts: no I/O here, so tests validate them against the Kubernetes schemas and an adapter applies
them (server-side apply) in the order given."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from kubeserve_deployer.backends.kubernetes.settings import KubernetesSettings

TENANT_LABEL = "kubeserve.io/tenant"
MANAGED_BY = {
    "app.kubernetes.io/managed-by": "kubeserve-deployer",
    "app.kubernetes.io/part-of": "kubeserve",
}
RUNTIME_SERVICE_ACCOUNT = "runtime"
# The runtime's container port (charts/model-serving `runtime.port`): the only port the
# ingress controller, Prometheus and the gateway may reach in a tenant namespace.
MODEL_PORT = 8080
PSS_LEVEL = "restricted"
# LimitRange defaults: what a container that sets no resources gets requested (a quota on
# requests refuses pods that set none); its limits default to a replica's.
DEFAULT_CPU_REQUEST = "100m"
DEFAULT_MEMORY_REQUEST = "256Mi"

Obj = dict[str, Any]


def namespace_for(user_id: UUID | str, prefix: str = "user-") -> str:
    """`user-{id}`: a UUID keeps it a valid DNS label (41 characters)."""
    return f"{prefix}{str(user_id).lower()}"


def _meta(name: str, namespace: str | None, tenant: str, **extra: Any) -> Obj:
    meta: Obj = {"name": name, "labels": {**MANAGED_BY, TENANT_LABEL: tenant}}
    if namespace is not None:
        meta["namespace"] = namespace
    meta.update(extra)
    return meta


def _ns_selector(name: str) -> Obj:
    # Every namespace carries its own name as this label (Kubernetes >= 1.22).
    return {"matchLabels": {"kubernetes.io/metadata.name": name}}


def tenant_objects(user_id: UUID | str, config: KubernetesSettings) -> list[Obj]:
    """Everything provisioning applies for one tenant, the namespace first (the rest lives in
    it) and the deployer's RoleBinding second (in perNamespace mode the rest needs its rights).
    No credential of any kind is put there: runtimes download their own version through
    presigned URLs (artifacts.py)."""
    tenant = str(user_id).lower()
    ns = namespace_for(tenant, config.namespace_prefix)
    objects: list[Obj] = [
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": ns,
                "labels": {
                    **MANAGED_BY,
                    TENANT_LABEL: tenant,
                    **{
                        f"pod-security.kubernetes.io/{mode}": PSS_LEVEL
                        for mode in ("enforce", "audit", "warn")
                    },
                    **{
                        f"pod-security.kubernetes.io/{mode}-version": "latest"
                        for mode in ("enforce", "audit", "warn")
                    },
                },
            },
        }
    ]
    if config.tenant_access == "perNamespace":
        objects.append(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": _meta("kubeserve-deployer", ns, tenant),
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": config.tenant_cluster_role,
                },
                "subjects": [
                    {
                        "kind": "ServiceAccount",
                        "name": config.service_account,
                        "namespace": config.service_account_namespace,
                    }
                ],
            }
        )
    objects += [
        {
            "apiVersion": "v1",
            "kind": "ResourceQuota",
            "metadata": _meta("tenant-quota", ns, tenant),
            "spec": {
                "hard": {
                    "requests.cpu": config.quota_cpu,
                    "limits.cpu": config.quota_cpu,
                    "requests.memory": config.quota_memory,
                    "limits.memory": config.quota_memory,
                    "pods": str(config.quota_pods),
                    "services.nodeports": "0",
                    "services.loadbalancers": "0",
                }
            },
        },
        {
            "apiVersion": "v1",
            "kind": "LimitRange",
            "metadata": _meta("tenant-limits", ns, tenant),
            "spec": {
                "limits": [
                    {
                        "type": "Container",
                        # A quota on requests/limits refuses pods that set none; these
                        # defaults admit them.
                        "default": {
                            "cpu": config.replica_cpu_limit,
                            "memory": config.replica_memory_limit,
                        },
                        "defaultRequest": {
                            "cpu": DEFAULT_CPU_REQUEST,
                            "memory": DEFAULT_MEMORY_REQUEST,
                        },
                        "max": {"cpu": config.quota_cpu, "memory": config.quota_memory},
                    }
                ]
            },
        },
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": _meta(RUNTIME_SERVICE_ACCOUNT, ns, tenant),
            "automountServiceAccountToken": False,
        },
        *network_policies(ns, tenant, config),
    ]
    return objects


def network_policies(ns: str, tenant: str, config: KubernetesSettings) -> list[Obj]:
    """Default deny both ways, then: DNS and the object store out; the model port in from the
    ingress controller, Prometheus and (optionally) the platform gateway."""
    everything: Obj = {}
    policies: list[Obj] = [
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": _meta("default-deny", ns, tenant),
            "spec": {"podSelector": everything, "policyTypes": ["Ingress", "Egress"]},
        },
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": _meta("allow-dns", ns, tenant),
            "spec": {
                "podSelector": {},
                "policyTypes": ["Egress"],
                "egress": [
                    {
                        "to": [
                            {
                                "namespaceSelector": _ns_selector(config.dns_namespace),
                                # kube-dns is the label both kube-dns and CoreDNS pods carry.
                                "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                            }
                        ],
                        "ports": [
                            {"protocol": "UDP", "port": 53},
                            {"protocol": "TCP", "port": 53},
                        ],
                    }
                ],
            },
        },
    ]
    store_peers: list[Obj] = []
    if config.object_store_cidr:
        store_peers.append({"ipBlock": {"cidr": config.object_store_cidr}})
    if config.object_store_namespace:
        store_peers.append({"namespaceSelector": _ns_selector(config.object_store_namespace)})
    if store_peers:
        rule: Obj = {"to": store_peers}
        if config.object_store_namespace and not config.object_store_cidr:
            # In-cluster MinIO: its API port only. A CIDR (an external S3) keeps every port,
            # since HTTPS endpoints and proxies differ.
            rule["ports"] = [{"protocol": "TCP", "port": config.object_store_port}]
        policies.append(
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": _meta("allow-object-store", ns, tenant),
                "spec": {"podSelector": {}, "policyTypes": ["Egress"], "egress": [rule]},
            }
        )
    sources: list[Obj] = [
        {"namespaceSelector": _ns_selector(name)}
        for name in (config.ingress_namespace, config.monitoring_namespace)
        if name
    ]
    if config.gateway_namespace:
        sources.append(
            {
                "namespaceSelector": _ns_selector(config.gateway_namespace),
                "podSelector": {"matchLabels": {"app.kubernetes.io/component": "gateway"}},
            }
        )
    if sources:
        policies.append(
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": _meta("allow-model-port", ns, tenant),
                "spec": {
                    "podSelector": {},
                    "policyTypes": ["Ingress"],
                    "ingress": [
                        {
                            "from": sources,
                            "ports": [{"protocol": "TCP", "port": MODEL_PORT}],
                        }
                    ],
                },
            }
        )
    return policies
