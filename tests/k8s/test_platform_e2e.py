"""End to end on a real cluster (marked `k8s`, skipped without KUBECONFIG; see conftest.py and
docs/kubernetes.md): a user uploads a model, deploys it and predicts through the gateway and,
when deployments have an Ingress, through it (whose auth check never turns into a 500); the
tenant's namespace is provisioned as designed, its pods hold no object-store credentials and
the deployer replicas share one Lease; the tenant quota refuses a sixth pod; and a pod in one
tenant's namespace reaches neither another tenant's model nor the internet, and its presigned
URLs fetch its own artifact but not another tenant's (a probe Job reports what it could do - no
kubectl exec)."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

IRIS_ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]
PASSWORD = "k8s suite passphrase 1"  # a throw-away test user


async def poll(
    check: Callable[[], Awaitable[Any]], *, budget: float, interval: float = 2.0, what: str
) -> Any:
    """Until `check()` returns something truthy (bounded; a cluster is slow, not a timing test)."""
    deadline = time.monotonic() + budget
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {budget:g}s waiting for {what}")
        await asyncio.sleep(interval)


class Tenant:
    """A registered user with the SDK (blocking calls run in a thread)."""

    def __init__(self, url: str) -> None:
        from kubeserve_sdk import Client

        self.client = Client(url, timeout=60)
        self.email = f"k8s-{uuid.uuid4().hex[:10]}@example.com"
        self.id = ""

    async def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return await asyncio.to_thread(getattr(self.client, method), *args, **kwargs)

    async def register(self) -> Tenant:
        await self.call("register", self.email, PASSWORD)
        await self.call("login", self.email, PASSWORD)
        self.id = str((await self.call("me"))["id"])
        return self

    async def deploy_iris(
        self, model_dir: Path, budget: float, replicas: int = 1
    ) -> dict[str, Any]:
        model = await self.call("create_model", f"iris-{uuid.uuid4().hex[:6]}", "sklearn")
        version = await self.call("push", model["id"], model_dir / "model.joblib")
        version = await self.call("wait_for_version", model["id"], version["id"], timeout=budget)
        assert version["status"] == "Ready", version
        created = await self.call("deploy", version["id"], replicas)
        deployment = await self.call("wait_for_deployment", created["id"], timeout=budget)
        assert deployment["status"] == "Running", deployment.get("failure_reason")
        return dict(deployment)

    @property
    def namespace(self) -> str:
        return f"user-{self.id}"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import joblib
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    directory = tmp_path_factory.mktemp("iris")
    iris = load_iris()
    joblib.dump(
        LogisticRegression(max_iter=500).fit(iris.data, iris.target), directory / "model.joblib"
    )
    return directory


async def _cleanup(tenant: Tenant, deployments: list[str], kube: Any) -> None:
    from kubernetes_asyncio import client

    for d in deployments:
        try:
            await tenant.call("delete_deployment", d)
        except Exception:  # best effort
            pass
    # Deleting the user would retire the tenant only after the grace period (an hour by
    # default): the suite removes its tenants' namespaces itself once their releases are gone.
    core = client.CoreV1Api(kube)

    async def releases_gone() -> bool:
        secrets = await core.list_namespaced_secret(tenant.namespace, label_selector="owner=helm")
        return not secrets.items

    try:
        await poll(releases_gone, budget=300, what="releases uninstalled")
        await core.delete_namespace(tenant.namespace)
    except Exception:  # a leftover namespace is harmless and labelled
        pass


async def test_upload_deploy_predict_and_the_tenant_namespace(
    platform: None, gateway_url: str, model_dir: Path, kube: Any, budget: float
) -> None:
    from kubernetes_asyncio import client

    tenant = await Tenant(gateway_url).register()
    deployment = await tenant.deploy_iris(model_dir, budget)
    d = deployment["id"]
    try:
        # Through the gateway (which proxies to the in-cluster Service)...
        answer = await tenant.call("predict", d, {"instances": IRIS_ROWS})
        assert len(answer["predictions"]) == 2
        # ...and straight through the ingress controller when deployments have an Ingress: the
        # same paths, and refusals nginx can pass on (401/403, never its 500).
        import httpx

        ingresses = await client.NetworkingV1Api(kube).list_namespaced_ingress(
            tenant.namespace, label_selector=f"kubeserve.io/deployment-id={d}"
        )
        stranger = await Tenant(gateway_url).register()
        async with httpx.AsyncClient(timeout=30) as http:
            token = tenant.client.credentials.access_token
            mine = {"Authorization": f"Bearer {token}"}
            theirs = {"Authorization": f"Bearer {stranger.client.credentials.access_token}"}
            simple = await http.post(
                f"{gateway_url}/api/v1/predict/{d}", json={"instances": IRIS_ROWS}, headers=mine
            )
            assert simple.status_code == 200, simple.text
            ready = await http.get(
                f"{gateway_url}/api/v1/predict/{d}/v2/health/ready", headers=mine
            )
            assert ready.status_code == 200, ready.text
            anonymous = await http.post(
                f"{gateway_url}/api/v1/predict/{d}", json={"instances": IRIS_ROWS}
            )
            assert anonymous.status_code == 401
            other = await http.post(
                f"{gateway_url}/api/v1/predict/{d}", json={"instances": IRIS_ROWS}, headers=theirs
            )
            # The gateway answers 404 for another tenant's deployment; an Ingress's auth check
            # answers 403 (nginx passes on nothing else but 401). nginx picks the deployment's
            # Ingress for this host when its rule names the host (host rules win over host-less).
            host = httpx.URL(gateway_url).host
            routed_here = any(r.host == host for i in ingresses.items for r in i.spec.rules)
            assert other.status_code in ((403,) if routed_here else (403, 404)), other.text
        for ingress in ingresses.items:
            paths = [p.path for r in ingress.spec.rules for p in r.http.paths]
            assert any(p.startswith("/api/v1(/predict)/") for p in paths), paths
            assert {p.backend.service.name for r in ingress.spec.rules for p in r.http.paths} == {
                f"model-{d}"
            }
        # The tenant namespace is what provisioning promises.
        core = client.CoreV1Api(kube)
        ns = await core.read_namespace(tenant.namespace)
        assert ns.metadata.labels["pod-security.kubernetes.io/enforce"] == "restricted"
        assert ns.metadata.labels["kubeserve.io/tenant"] == tenant.id
        quota = await core.read_namespaced_resource_quota("tenant-quota", tenant.namespace)
        assert quota.spec.hard["pods"] == "5" and quota.spec.hard["limits.cpu"] == "2"
        policies = await client.NetworkingV1Api(kube).list_namespaced_network_policy(
            tenant.namespace
        )
        assert "default-deny" in {p.metadata.name for p in policies.items}
        pods = await core.list_namespaced_pod(
            tenant.namespace, label_selector=f"kubeserve.io/deployment-id={d}"
        )
        assert pods.items
        for pod in pods.items:
            assert pod.spec.automount_service_account_token is False
            assert pod.spec.security_context.run_as_non_root is True
            # No object-store credentials: only a manifest of presigned URLs of its revision.
            (runtime,) = [c for c in pod.spec.containers if c.name == "runtime"]
            names = {e.name for e in runtime.env or []}
            assert not names & {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}, names
            assert "KUBESERVE_ARTIFACT_MANIFEST" in names
        secrets = await core.list_namespaced_secret(tenant.namespace)
        assert all(
            not (s.data or {}).keys() & {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
            for s in secrets.items
        )
        service = await core.read_namespaced_service(f"model-{d}", tenant.namespace)
        assert [p.port for p in service.spec.ports] == [80]
        # The deployer replicas elect one leader on a Lease in the platform's namespace.
        platform_ns = os.environ.get("KUBESERVE_E2E_PLATFORM_NAMESPACE") or "kubeserve"
        lease = await client.CoordinationV1Api(kube).read_namespaced_lease(
            "kubeserve-deployer", platform_ns
        )
        deployer_pods = await core.list_namespaced_pod(
            platform_ns, label_selector="app.kubernetes.io/component=deployer"
        )
        holders = {p.metadata.name for p in deployer_pods.items}
        assert any(lease.spec.holder_identity.startswith(h) for h in holders), (
            lease.spec.holder_identity,
            holders,
        )
    finally:
        await _cleanup(tenant, [d], kube)


async def test_the_tenant_quota_refuses_a_sixth_pod(
    platform: None, gateway_url: str, model_dir: Path, kube: Any, budget: float
) -> None:
    from kubernetes_asyncio import client
    from kubernetes_asyncio.client.exceptions import ApiException
    from kubeserve_sdk import APIError

    tenant = await Tenant(gateway_url).register()
    deployment = await tenant.deploy_iris(model_dir, budget)
    d = deployment["id"]
    core = client.CoreV1Api(kube)
    try:
        await tenant.call("scale", d, 5)
        with pytest.raises(APIError) as refused:  # the API's own quota check
            await tenant.call("scale", d, 6)
        assert refused.value.status == 409

        async def five_pods() -> bool:
            pods = await core.list_namespaced_pod(tenant.namespace)
            return len([p for p in pods.items if p.metadata.deletion_timestamp is None]) >= 5

        await poll(five_pods, budget=budget, what="5 pods")
        # The cluster's quota refuses a sixth pod, whoever asks (here: the test's admin).
        with pytest.raises(ApiException) as caught:
            await core.create_namespaced_pod(tenant.namespace, _probe_pod("sixth", "true"))
        assert caught.value.status == 403
        assert "exceeded quota" in caught.value.body
    finally:
        await _cleanup(tenant, [d], kube)


async def _own_and_forged_urls(
    core: Any, a: Tenant, a_deployment: str, b: Tenant, b_deployment: str
) -> tuple[str, str]:
    """The model URL of A's manifest, and that URL with A's object key replaced by B's."""

    async def model_entry(tenant: Tenant, deployment: str) -> dict[str, Any]:
        secret = await core.read_namespaced_secret(
            f"kubeserve-{deployment}-artifacts", tenant.namespace
        )
        (manifest,) = [json.loads(base64.b64decode(v)) for v in secret.data.values()]
        return next(f for f in manifest["files"] if f["sha256"])

    own = await model_entry(a, a_deployment)
    other = await model_entry(b, b_deployment)
    own_path = own["url"].split("?", 1)[0]
    other_path = other["url"].split("?", 1)[0]
    return own["url"], own["url"].replace(own_path, other_path)


PROBE = """
import json, socket, sys
def reach(host, port):
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
        return "reachable"
    except OSError as exc:
        return "blocked: " + type(exc).__name__
result = {}
try:
    socket.getaddrinfo(sys.argv[1], 80)
    result["dns"] = "ok"
except OSError as exc:
    result["dns"] = "failed: " + str(exc)
result["other_tenant_service"] = reach(sys.argv[1], 80)
result["other_tenant_pod"] = reach(sys.argv[2], 8080)
result["internet"] = reach("1.1.1.1", 443)
host, port = sys.argv[3].rsplit(":", 1)
result["object_store"] = reach(host, port)
import urllib.request, urllib.error
def fetch(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return "status %d" % response.status
    except urllib.error.HTTPError as exc:
        return "status %d" % exc.code
    except OSError as exc:
        return "failed: " + type(exc).__name__
result["own_artifact"] = fetch(sys.argv[4])
result["other_tenant_artifact"] = fetch(sys.argv[5])
print(json.dumps(result))
"""


def _probe_pod(name: str, script: str, args: list[str] | None = None) -> dict[str, Any]:
    """A restricted-compliant pod (the namespace enforces the restricted standard)."""
    image = os.environ.get("KUBESERVE_E2E_PROBE_IMAGE") or "kubeserve/runtime-base:0.1.0"
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/name": "kubeserve-k8s-probe"}},
        "spec": {
            "restartPolicy": "Never",
            "serviceAccountName": "runtime",
            "automountServiceAccountToken": False,
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 10001,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [
                {
                    "name": "probe",
                    "image": image,
                    "imagePullPolicy": "IfNotPresent",
                    "command": ["python", "-c", script, *(args or [])],
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "readOnlyRootFilesystem": True,
                        "capabilities": {"drop": ["ALL"]},
                    },
                    "resources": {
                        "requests": {"cpu": "50m", "memory": "64Mi"},
                        "limits": {"cpu": "200m", "memory": "128Mi"},
                    },
                }
            ],
        },
    }


async def test_a_tenant_pod_reaches_neither_another_tenant_nor_the_internet(
    platform: None, gateway_url: str, model_dir: Path, kube: Any, budget: float
) -> None:
    from kubernetes_asyncio import client

    core = client.CoreV1Api(kube)
    batch = client.BatchV1Api(kube)
    a = await Tenant(gateway_url).register()
    b = await Tenant(gateway_url).register()
    a_dep = await a.deploy_iris(model_dir, budget)  # provisions A's namespace
    b_dep = await b.deploy_iris(model_dir, budget)
    try:
        b_pods = await core.list_namespaced_pod(
            b.namespace, label_selector=f"kubeserve.io/deployment-id={b_dep['id']}"
        )
        b_pod_ip = next(p.status.pod_ip for p in b_pods.items if p.status.pod_ip)
        b_service = f"model-{b_dep['id']}.{b.namespace}.svc.cluster.local"
        store = os.environ.get("KUBESERVE_E2E_OBJECT_STORE") or "minio.minio.svc.cluster.local:9000"
        # A's presigned URL of its own model, and the same URL pointed at B's model: the
        # signature covers the key, so the store must refuse the second.
        own_url, forged_url = await _own_and_forged_urls(core, a, a_dep["id"], b, b_dep["id"])
        pod = _probe_pod(
            "isolation-probe", PROBE, [b_service, b_pod_ip, store, own_url, forged_url]
        )
        job = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "isolation-probe"},
            "spec": {"backoffLimit": 0, "ttlSecondsAfterFinished": 600, "template": pod},
        }
        del job["spec"]["template"]["apiVersion"], job["spec"]["template"]["kind"]
        await batch.create_namespaced_job(a.namespace, job)

        async def finished() -> Any:
            pods = await core.list_namespaced_pod(
                a.namespace, label_selector="job-name=isolation-probe"
            )
            done = [p for p in pods.items if p.status.phase in ("Succeeded", "Failed")]
            return done[0] if done else None

        probe = await poll(finished, budget=budget, what="the probe Job")
        log = await core.read_namespaced_pod_log(probe.metadata.name, a.namespace)
        report = json.loads(log.strip().splitlines()[-1])
        # Positive controls: DNS and the object store are allowed, so "blocked" below means
        # the policies, not a broken probe.
        assert report["dns"] == "ok", report
        assert report["object_store"] == "reachable", report
        assert report["other_tenant_service"].startswith("blocked"), report
        assert report["other_tenant_pod"].startswith("blocked"), report
        assert report["internet"].startswith("blocked"), report
        assert report["own_artifact"] == "status 200", report
        assert report["other_tenant_artifact"] == "status 403", report
    finally:
        await _cleanup(a, [a_dep["id"]], kube)
        await _cleanup(b, [b_dep["id"]], kube)
