"""Tenant provisioning (kubernetes backend): exactly the intended objects, valid against the
Kubernetes 1.30 schemas, isolating the tenant the way DESIGN.md section 6 says (checked by
evaluating the NetworkPolicies), idempotent through the port against `FakeKubernetes`, errors
classified for the consumer, and consistent with the platform chart's RBAC and env."""

from __future__ import annotations

import ipaddress
import uuid
from pathlib import Path
from typing import Any

import pytest
from k8s_fakes import FakeCluster, FakeHelm, FakeKubernetes
from kubeserve_common.errors import PermanentError, TransientError
from kubeserve_common.events.catalog import UserRegistered
from kubeserve_common.storage.local import LocalArtifactStore
from kubeserve_deployer.backends.kubernetes.artifacts import ArtifactAccess
from kubeserve_deployer.backends.kubernetes.backend import KubernetesBackend
from kubeserve_deployer.backends.kubernetes.cluster import ClusterError
from kubeserve_deployer.backends.kubernetes.settings import KubernetesSettings
from kubeserve_deployer.backends.kubernetes.tenancy import namespace_for, tenant_objects
from kubeserve_deployer.backends.kubernetes.tenants import KubernetesTenants
from kubeserve_deployer.services.tenants import TenantService
from kubeserve_deployer.settings import DeployerSettings

kubernetes_validate = pytest.importorskip("kubernetes_validate")

REPO = Path(__file__).resolve().parents[3]
USER = uuid.UUID("6f1c2a9e-0b7d-4c3e-9a51-2d8e4f7b1c00")
NS = f"user-{USER}"
CONFIG = KubernetesSettings(object_store_namespace="minio", gateway_namespace="kubeserve")


def by_kind_name(objects: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(o["kind"], o["metadata"]["name"]): o for o in objects}


def test_tenant_objects_are_exactly_the_intended_ones() -> None:
    objects = by_kind_name(tenant_objects(USER, CONFIG))
    assert set(objects) == {
        ("Namespace", NS),
        ("RoleBinding", "kubeserve-deployer"),
        ("ResourceQuota", "tenant-quota"),
        ("LimitRange", "tenant-limits"),
        ("ServiceAccount", "runtime"),
        ("NetworkPolicy", "default-deny"),
        ("NetworkPolicy", "allow-dns"),
        ("NetworkPolicy", "allow-object-store"),
        ("NetworkPolicy", "allow-model-port"),
    }
    labels = objects[("Namespace", NS)]["metadata"]["labels"]
    for mode in ("enforce", "audit", "warn"):
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"
    assert labels["kubeserve.io/tenant"] == str(USER)
    for (kind, _), obj in objects.items():
        assert obj["metadata"]["labels"]["kubeserve.io/tenant"] == str(USER)
        if kind != "Namespace":
            assert obj["metadata"]["namespace"] == NS
    assert objects[("ResourceQuota", "tenant-quota")]["spec"]["hard"] == {
        "requests.cpu": "2",
        "limits.cpu": "2",
        "requests.memory": "4Gi",
        "limits.memory": "4Gi",
        "pods": "5",
        "services.nodeports": "0",
        "services.loadbalancers": "0",
    }
    (limit,) = objects[("LimitRange", "tenant-limits")]["spec"]["limits"]
    assert limit["type"] == "Container"
    assert limit["default"] == {"cpu": "400m", "memory": "768Mi"}
    assert limit["defaultRequest"] == {"cpu": "100m", "memory": "256Mi"}
    assert objects[("ServiceAccount", "runtime")]["automountServiceAccountToken"] is False
    deny = objects[("NetworkPolicy", "default-deny")]["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    binding = objects[("RoleBinding", "kubeserve-deployer")]
    assert binding["roleRef"]["name"] == "kubeserve-deployer-tenant"
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "kubeserve-deployer", "namespace": "kubeserve"}
    ]


def test_limit_range_defaults_fit_the_quota() -> None:
    """Five pods at the LimitRange defaults stay inside the quota (so none is refused)."""
    objects = by_kind_name(tenant_objects(USER, KubernetesSettings()))
    (limit,) = objects[("LimitRange", "tenant-limits")]["spec"]["limits"]
    assert 5 * int(limit["default"]["cpu"].rstrip("m")) <= 2000
    assert 5 * int(limit["default"]["memory"].rstrip("Mi")) <= 4096


def test_optional_objects_follow_the_settings() -> None:
    plain = by_kind_name(tenant_objects(USER, KubernetesSettings(tenant_access="clusterWide")))
    assert ("RoleBinding", "kubeserve-deployer") not in plain
    assert ("NetworkPolicy", "allow-object-store") not in plain  # no store configured
    with_store = by_kind_name(
        tenant_objects(USER, KubernetesSettings(object_store_cidr="10.20.0.0/16"))
    )
    store = with_store[("NetworkPolicy", "allow-object-store")]["spec"]["egress"]
    assert store == [{"to": [{"ipBlock": {"cidr": "10.20.0.0/16"}}]}]


def test_no_credential_of_any_kind_is_provisioned() -> None:
    """Runtimes get presigned URLs of their own version (artifacts.py), never keys that would
    read every tenant's artifacts."""
    for config in (CONFIG, KubernetesSettings(object_store_cidr="10.0.0.0/8")):
        kinds = {o["kind"] for o in tenant_objects(USER, config)}
        assert "Secret" not in kinds


@pytest.mark.parametrize(
    "config",
    [
        CONFIG,
        KubernetesSettings(tenant_access="clusterWide", object_store_cidr="10.0.0.0/8"),
    ],
    ids=["namespace-store-gateway", "cidr-store-cluster-wide"],
)
def test_every_tenant_object_validates_against_kubernetes_1_30(config: KubernetesSettings) -> None:
    for obj in tenant_objects(USER, config):
        try:
            kubernetes_validate.validate(obj, "1.30.0", strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{obj['kind']}/{obj['metadata']['name']}: {exc.message}")
    # ...and the validator is not vacuous here either.
    bad = tenant_objects(USER, config)[0]
    bad["metadata"]["lables"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, "1.30.0", strict=True)


# -- what the NetworkPolicies allow (a small evaluator of the subset we emit) --------------------


def _peer_matches(peer: dict[str, Any], namespace: str, labels: dict[str, str], ip: str) -> bool:
    if "ipBlock" in peer:
        return ipaddress.ip_address(ip) in ipaddress.ip_network(peer["ipBlock"]["cidr"])
    if namespace is None:
        return False  # outside the cluster: only ipBlocks match
    ns_sel = peer.get("namespaceSelector")
    if ns_sel is not None:
        wanted = ns_sel.get("matchLabels", {})
        if wanted != {
            k: v for k, v in {"kubernetes.io/metadata.name": namespace}.items() if k in wanted
        }:
            return False
    pod_sel = peer.get("podSelector")
    if pod_sel is not None and not pod_sel.get("matchLabels", {}).items() <= labels.items():
        return False
    return ns_sel is not None or pod_sel is not None


def allowed(
    policies: list[dict[str, Any]],
    direction: str,
    peer_namespace: Any,
    peer_labels: dict[str, str],
    port: int,
    protocol: str = "TCP",
    ip: str = "10.96.0.10",
) -> bool:
    """Whether a connection to/from a tenant pod is allowed (Kubernetes' union semantics)."""
    key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    for policy in policies:
        spec = policy["spec"]
        if direction not in spec["policyTypes"]:
            continue
        for rule in spec.get(key, []):
            ports = rule.get("ports")
            if ports and not any(p["port"] == port and p["protocol"] == protocol for p in ports):
                continue
            if any(_peer_matches(p, peer_namespace, peer_labels, ip) for p in rule[peers_key]):
                return True
    return False


def test_network_policies_isolate_the_tenant() -> None:
    config = KubernetesSettings(
        object_store_namespace="minio",
        gateway_namespace="kubeserve",
        monitoring_namespace="monitoring",
    )
    policies = [o for o in tenant_objects(USER, config) if o["kind"] == "NetworkPolicy"]
    other = f"user-{uuid.uuid4()}"
    # Out: DNS and the object store only.
    assert allowed(policies, "Egress", "kube-system", {"k8s-app": "kube-dns"}, 53, "UDP")
    assert allowed(policies, "Egress", "kube-system", {"k8s-app": "kube-dns"}, 53, "TCP")
    assert not allowed(policies, "Egress", "kube-system", {"k8s-app": "metrics"}, 53, "UDP")
    assert allowed(policies, "Egress", "minio", {}, 9000)
    assert not allowed(policies, "Egress", "minio", {}, 22)
    assert not allowed(policies, "Egress", other, {}, 8080)  # another tenant's pods
    assert not allowed(policies, "Egress", NS, {}, 8080)  # even its own (nothing needs it)
    assert not allowed(policies, "Egress", None, {}, 443, ip="93.184.216.34")  # the internet
    assert not allowed(policies, "Egress", "kubeserve", {}, 5432)  # the platform's database
    # In: the model port from the ingress controller, Prometheus and the gateway pods.
    assert allowed(policies, "Ingress", "ingress-nginx", {}, 8080)
    assert allowed(policies, "Ingress", "monitoring", {}, 8080)
    assert allowed(
        policies, "Ingress", "kubeserve", {"app.kubernetes.io/component": "gateway"}, 8080
    )
    assert not allowed(
        policies, "Ingress", "kubeserve", {"app.kubernetes.io/component": "auth"}, 8080
    )
    assert not allowed(policies, "Ingress", "ingress-nginx", {}, 22)
    assert not allowed(policies, "Ingress", other, {}, 8080)
    # External S3 by CIDR: that range, nothing else outside.
    cidr = KubernetesSettings(object_store_cidr="10.20.0.0/16")
    policies = [o for o in tenant_objects(USER, cidr) if o["kind"] == "NetworkPolicy"]
    assert allowed(policies, "Egress", None, {}, 443, ip="10.20.3.4")
    assert not allowed(policies, "Egress", None, {}, 443, ip="10.21.0.1")


# -- through the port ------------------------------------------------------------------------------


async def test_provisioning_twice_changes_nothing() -> None:
    cluster = FakeCluster()
    kube = FakeKubernetes(cluster)
    provisioner = KubernetesTenants(kube, CONFIG)
    assert await provisioner.provision(USER) == NS
    first = dict(cluster.objects)
    assert kube.changes == len(tenant_objects(USER, CONFIG))
    assert {o["kind"] for o in first.values()} >= {"Namespace", "ResourceQuota", "NetworkPolicy"}
    assert await provisioner.provision(USER) == NS
    assert cluster.objects == first
    assert kube.changes == len(first)  # the second run changed nothing
    # The namespace came first: everything else lives in it.
    assert kube.calls[0] == ("apply", ("Namespace", NS))


async def test_provisioning_two_tenants_keeps_them_apart() -> None:
    cluster = FakeCluster()
    provisioner = KubernetesTenants(FakeKubernetes(cluster), CONFIG)
    other = uuid.uuid4()
    await provisioner.provision(USER)
    await provisioner.provision(other)
    assert {NS, namespace_for(other)} == cluster.namespaces()
    assert len(cluster.in_namespace(NS)) == len(cluster.in_namespace(namespace_for(other)))


def backend_on(cluster: FakeCluster) -> tuple[KubernetesBackend, FakeKubernetes]:
    kube = FakeKubernetes(cluster)
    # Tenants need no artifact store: a directory nothing is read from stands in.
    unused = LocalArtifactStore(Path("/nonexistent"))
    access = ArtifactAccess(unused, unused, ttl_seconds=3600)
    return KubernetesBackend(FakeHelm(cluster), kube, CONFIG, access), kube


async def test_retiring_a_tenant_removes_its_namespace_and_is_idempotent() -> None:
    cluster = FakeCluster()
    backend, _ = backend_on(cluster)
    other = uuid.uuid4()
    service = TenantService(backend)
    for user in (USER, other):
        await service.user_registered(
            None, UserRegistered(user_id=user, email="a@b.c", role="user")
        )  # type: ignore[arg-type]
    assert NS in cluster.namespaces()
    await backend.retire_tenant(USER)
    assert cluster.in_namespace(NS) == [] and cluster.deleted_namespaces == [NS]
    assert namespace_for(other) in cluster.namespaces()  # the other tenant is untouched
    # Again (a redelivered event, a retry after a crash): the namespace is already gone.
    await backend.retire_tenant(USER)
    assert cluster.deleted_namespaces == [NS, NS] and namespace_for(other) in cluster.namespaces()


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (409, TransientError),
        (500, TransientError),
        (503, TransientError),
        (None, TransientError),
        (403, PermanentError),
        (422, PermanentError),
    ],
)
async def test_cluster_errors_are_classified_for_the_consumer(
    status: int | None, expected: type[Exception]
) -> None:
    cluster = FakeCluster()
    backend, kube = backend_on(cluster)
    error = ClusterError(f"HTTP {status}", status=status, transient=status in (409, 500, 503, None))
    kube.fail_next("apply", error)
    service = TenantService(backend)
    event = UserRegistered(user_id=USER, email="a@b.c", role="user")
    with pytest.raises(expected):
        await service.user_registered(None, event)  # type: ignore[arg-type]
    # The redelivery (transient) or an operator's retry converges to the full set.
    await service.user_registered(None, event)  # type: ignore[arg-type]
    assert {(o["kind"], o["metadata"]["name"]) for o in cluster.objects.values()} == set(
        by_kind_name(tenant_objects(USER, CONFIG))
    )
    kube.fail_next("delete_namespace", error)
    with pytest.raises(expected):
        await backend.retire_tenant(USER)
    assert NS in cluster.namespaces()  # nothing half-done: the next attempt deletes it
    await backend.retire_tenant(USER)
    assert NS not in cluster.namespaces()


async def test_local_backend_provisions_nothing() -> None:
    await TenantService(None).user_registered(  # type: ignore[arg-type]
        None, UserRegistered(user_id=USER, email="a@b.c", role="user")
    )


# -- consistent with the platform chart (charts/kubeserve) -----------------------------------------


def _render_platform(case: dict[str, Any]) -> list[dict[str, Any]]:
    helm = pytest.importorskip("helm_python")
    import yaml

    values = {
        "secrets": {
            "internalSecret": "0123456789abcdef0123456789abcdef",
            "jwtPrivateKey": "-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----\n",
        },
        "externalDatabase": {"host": "pg", "password": "p"},
        "externalRabbitmq": {"host": "mq", "password": "p"},
        "externalS3": {
            "endpoint": "http://minio.minio:9000",
            "accessKeyId": "a",
            "secretAccessKey": "b",
        },
        **case,
    }
    manifests = helm.Chart.load(REPO / "charts" / "kubeserve").render(
        values, name="kubeserve", namespace="kubeserve"
    )
    return [
        d
        for path, text in manifests.items()
        if path.endswith((".yaml", ".yml"))
        for d in yaml.safe_load_all(text)
        if d
    ]


def _deployer_env(objects: list[dict[str, Any]]) -> dict[str, str]:
    deployer = next(
        o
        for o in objects
        if o["kind"] == "Deployment" and o["metadata"]["name"].endswith("-deployer")
    )
    env = {}  # secret references read as `<secret:NAME/KEY>`
    for var in deployer["spec"]["template"]["spec"]["containers"][0]["env"]:
        ref = var.get("valueFrom", {}).get("secretKeyRef")
        if ref:
            env[var["name"]] = f"<secret:{ref['name']}/{ref['key']}>"
        elif "value" in var:
            env[var["name"]] = var["value"]
        elif var.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "metadata.namespace":
            env[var["name"]] = "kubeserve"
    return env


def test_the_platform_charts_env_is_what_the_deployer_reads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every KUBESERVE_K8S_* variable the chart passes is a deployer setting (none silently
    ignored), and the RoleBinding provisioning writes binds the chart's tenant ClusterRole to
    the chart's deployer service account, which may bind exactly that role."""
    objects = _render_platform({"deployer": {"kubernetes": {"objectStoreNamespace": "minio"}}})
    env = _deployer_env(objects)
    assert env["KUBESERVE_K8S_GATEWAY_NAMESPACE"] == "kubeserve"
    k8s_vars = {k for k in env if k.startswith("KUBESERVE_K8S_")}
    fields = {f"KUBESERVE_K8S_{name.upper()}" for name in KubernetesSettings.model_fields}
    assert k8s_vars and k8s_vars <= fields, sorted(k8s_vars - fields)
    for key, value in env.items():
        if key.startswith("KUBESERVE_K8S_") or key == "KUBESERVE_RUNTIME_BACKEND":
            monkeypatch.setenv(key, value)  # secret references stand in for the secrets
    settings = DeployerSettings(dev_mode=True)
    assert settings.runtime_backend == "kubernetes"
    config = settings.k8s
    assert config.gateway_namespace == "kubeserve" and config.object_store_namespace == "minio"
    binding = by_kind_name(tenant_objects(USER, config))[("RoleBinding", "kubeserve-deployer")]
    roles = {o["metadata"]["name"]: o for o in objects if o["kind"] == "ClusterRole"}
    assert binding["roleRef"]["name"] in roles
    service_accounts = {o["metadata"]["name"] for o in objects if o["kind"] == "ServiceAccount"}
    (subject,) = binding["subjects"]
    assert subject["name"] in service_accounts and subject["namespace"] == "kubeserve"
    bind_rules = [
        r for role in roles.values() for r in role["rules"] if "bind" in r.get("verbs", [])
    ]
    assert [r["resourceNames"] for r in bind_rules] == [[binding["roleRef"]["name"]]]
    # The tenant role covers every namespaced kind provisioning writes.
    tenant_role = roles[binding["roleRef"]["name"]]
    writable = {
        (group, resource)
        for rule in tenant_role["rules"]
        if "patch" in rule["verbs"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    }
    plural = {
        "ResourceQuota": ("", "resourcequotas"),
        "LimitRange": ("", "limitranges"),
        "ServiceAccount": ("", "serviceaccounts"),
        "NetworkPolicy": ("networking.k8s.io", "networkpolicies"),
    }
    for obj in tenant_objects(USER, config):
        if obj["kind"] in plural:
            assert plural[obj["kind"]] in writable, obj["kind"]
    # The namespace guard admits every object provisioning writes (names start with the prefix).
    for obj in tenant_objects(USER, config):
        ns = obj["metadata"].get("namespace", obj["metadata"]["name"])
        assert ns.startswith(settings.k8s.namespace_prefix)
