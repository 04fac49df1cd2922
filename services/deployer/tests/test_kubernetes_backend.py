"""The kubernetes runtime backend through the RuntimeBackend port, on `FakeHelm` and
`FakeKubernetes` (no cluster here) and the versions' files on moto's S3 server: deploy, scale,
roll out and back, delete, failures with the reason the cluster gives (CrashLoopBackOff,
OOMKilled, ImagePullBackOff, quota, scheduling), transient and permanent API errors, a restart
that adopts, reinstalls and uninstalls, the presigned-URL manifests pods download their version
with, and leadership (a standby does nothing). The values handed to Helm are rendered with the
real Helm engine (charts/model-serving's schema applies) and every rendered object validated
and walked for the restricted rules."""

from __future__ import annotations

import dataclasses
import hashlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from k8s_fakes import FakeCluster, FakeHelm, FakeKubernetes
from kubeserve_common.errors import TransientError
from kubeserve_common.net import free_port
from kubeserve_common.storage.s3 import S3ArtifactStore
from kubeserve_deployer.adapters.runtime_backend import RuntimeBackend
from kubeserve_deployer.backends.kubernetes.artifacts import ArtifactAccess
from kubeserve_deployer.backends.kubernetes.backend import KubernetesBackend
from kubeserve_deployer.backends.kubernetes.cluster import ClusterError
from kubeserve_deployer.backends.kubernetes.helm import HelmError
from kubeserve_deployer.backends.kubernetes.leader import LeaderElector
from kubeserve_deployer.backends.kubernetes.release import (
    artifacts_secret_name,
    release_name,
    service_url,
)
from kubeserve_deployer.backends.kubernetes.settings import KubernetesSettings
from kubeserve_deployer.domain.autoscaling import AutoscalingPolicy
from kubeserve_deployer.domain.deployments import DeploymentSpec, ReplicaStatus, RevisionTarget

from tests.deploy.k8s_checks import assert_restricted, pod_specs

REPO = Path(__file__).resolve().parents[3]
OWNER = uuid.UUID("0b7d6f1c-2a9e-4c3e-9a51-2d8e4f7b1c01")
NS = f"user-{OWNER}"
BUCKET = "kubeserve-backend-tests"
CONFIG = KubernetesSettings(
    runtime_image="registry.example.com/kubeserve/runtime-base:0.1.0",
    ingress_enabled=True,
    ingress_hostname="kubeserve.example.com",
    ingress_auth_url="http://kubeserve-gateway.kubeserve.svc.cluster.local/internal/auth/predict",
    rollout_timeout_seconds=300,
    release_scan_interval=60,
)
TAGS = ("v1", "v2", "v3")
WHEEL = "wheelhouse/tinyextra-1.0-py3-none-any.whl"


def model_bytes(tag: str) -> bytes:
    return f"model of {tag}".encode()


def key(tag: str, name: str = "model.joblib") -> str:
    return f"models/{OWNER}/m-1/{tag}/{name}"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class World:
    """One fake cluster and a backend on it; `restart()` builds a new backend on the same one
    (`leader`: with a Lease election under that identity)."""

    def __init__(self, store: S3ArtifactStore, config: KubernetesSettings | None = None) -> None:
        self.cluster = FakeCluster()
        self.clock = Clock()
        self.store = store
        self.config = config or CONFIG
        self.restart()

    def restart(self, leader: str | None = None) -> KubernetesBackend:
        self.helm = FakeHelm(self.cluster)
        self.kube = FakeKubernetes(self.cluster)
        access = ArtifactAccess(
            self.store,
            self.store,
            ttl_seconds=self.config.artifact_url_ttl_seconds,
            wall=lambda: 1_700_000_000 + self.clock.now,
        )
        elector = None
        if leader is not None:
            elector = LeaderElector(self.kube, self.config, identity=leader, clock=self.clock)
        self.backend = KubernetesBackend(
            self.helm, self.kube, self.config, access, elector=elector, clock=self.clock
        )
        return self.backend

    def manifest(self, deployment_id: uuid.UUID) -> dict[str, Any] | None:
        release = self.cluster.releases.get((NS, release_name(deployment_id)))
        return None if release is None else self.kube.manifest(release)

    def secret(self, deployment_id: uuid.UUID) -> dict[str, Any] | None:
        path = f"/api/v1/namespaces/{NS}/secrets/{artifacts_secret_name(deployment_id)}"
        return self.cluster.objects.get(path)


def spec(
    deployment_id: uuid.UUID,
    revision: int = 1,
    tag: str = "v1",
    replicas: int = 1,
    owner: uuid.UUID = OWNER,
) -> DeploymentSpec:
    target = RevisionTarget(
        revision=revision,
        version_id=uuid.uuid5(OWNER, tag),  # one version per tag, as in the registry
        version_tag=tag,
        artifact_uri=f"s3://{BUCKET}/models/{owner}/m-1/{tag}/model.joblib",
        sha256=hashlib.sha256(model_bytes(tag)).hexdigest(),
        filename="model.joblib",
        replicas=replicas,
        wheelhouse_uri=f"s3://{BUCKET}/models/{owner}/m-1/{tag}/wheelhouse/",
    )
    return DeploymentSpec(deployment_id, owner, "Iris Classifier", target)


@pytest.fixture
async def store(s3_url: str) -> AsyncIterator[S3ArtifactStore]:
    """The versions' folders as the registry and builder leave them: model, requirements.txt,
    a wheelhouse (v2), the build report the runtime must not get."""
    s3 = S3ArtifactStore(
        BUCKET, endpoint_url=s3_url, access_key_id="testing", secret_access_key="testing"
    )
    await s3.ensure_bucket()
    for tag in TAGS:
        await s3.put_bytes(key(tag), model_bytes(tag))
        await s3.put_bytes(key(tag, "build-report.json"), b"{}")
    await s3.put_bytes(key("v2", "requirements.txt"), b"tinyextra==1.0\n")
    await s3.put_bytes(key("v2", WHEEL), b"PK wheel bytes")
    yield s3
    await s3.close()


@pytest.fixture
async def world(store: S3ArtifactStore) -> World:
    w = World(store)
    await w.backend.start()
    return w


def installs(world: World) -> list[dict[str, Any]]:
    return [args[2] for method, args in world.helm.calls if method == "install_or_upgrade"]


def test_the_backend_satisfies_the_port(world: World) -> None:
    backend: RuntimeBackend = world.backend  # type-checked by mypy; and at run time:
    for name in (
        "start",
        "close",
        "deploy",
        "scale",
        "undeploy",
        "status",
        "reconcile",
        "retire_tenant",
    ):
        assert callable(getattr(backend, name))
    assert backend.name == "kubernetes" and backend.active


async def test_deploy_provisions_installs_and_reports_the_service_url(world: World) -> None:
    d = uuid.uuid4()
    obs = await world.backend.deploy(spec(d))
    assert NS in world.cluster.namespaces()  # provisioned before the release
    (values,) = installs(world)
    assert world.helm.calls[0][1][:2] == (release_name(d), NS)
    assert values["deploymentId"] == str(d) and values["tenant"] == str(OWNER)
    assert values["model"] == {
        "name": "iris-classifier",
        "version": "v1",
        "uri": f"s3://{BUCKET}/models/{OWNER}/m-1/v1/",  # the folder: requirements + wheels
        "wheelhouseUri": f"s3://{BUCKET}/models/{OWNER}/m-1/v1/wheelhouse/",
    }
    assert values["image"]["registry"] == "registry.example.com"
    assert values["image"]["repository"] == "kubeserve/runtime-base"
    assert "s3" not in values  # no credentials: the pod downloads through presigned URLs
    assert values["artifacts"] == {"secretName": artifacts_secret_name(d), "key": "r1.json"}
    assert values["replicaCount"] == 1 and values["autoscaling"]["enabled"] is False
    assert values["serviceMonitor"] == {
        "enabled": True,
        "labels": {"release": "kube-prometheus-stack"},
    }
    url = service_url(d, NS)
    assert url == f"http://model-{d}.{NS}.svc.cluster.local"
    assert obs.endpoints(1) == [url]
    assert [r.status for r in obs.replicas] == [ReplicaStatus.READY]
    kinds = [kind for kind, _ in obs.events]
    assert kinds == ["release_applied", "rollout_ready"]
    assert "ingress http://kubeserve.example.com/api/v1/predict/" in obs.events[-1][1]
    assert "rollout_ms" in obs.cold_start[1]
    # Level-triggered: the same desired state again changes nothing, and a steady deployment
    # is re-read only every observe_interval.
    reads = world.kube.count("list_pods")
    again = await world.backend.reconcile([spec(d)])
    assert len(installs(world)) == 1 and again[d].endpoints(1) == [url] and not again[d].events
    assert world.kube.count("list_pods") == reads
    world.clock.now += world.config.observe_interval
    again = await world.backend.reconcile([spec(d)])
    assert world.kube.count("list_pods") == reads + 1 and again[d].endpoints(1) == [url]
    assert world.backend.next_pass_in(5.0) == 5.0  # nothing rolling out: idle period


async def test_scale_upgrades_the_replica_count(world: World) -> None:
    d = uuid.uuid4()
    await world.backend.deploy(spec(d))
    obs = await world.backend.scale(d, 3)
    assert installs(world)[-1]["replicaCount"] == 3
    assert len(obs.ready(1)) == 3
    assert obs.endpoints(1) == [service_url(d, NS)] * 3


async def test_roll_out_and_back_are_upgrades_to_each_revisions_values(world: World) -> None:
    d = uuid.uuid4()
    await world.backend.deploy(spec(d))
    obs = await world.backend.deploy(spec(d, revision=2, tag="v2"))
    assert installs(world)[-1]["model"]["version"] == "v2" and len(obs.ready(2)) == 1
    # A rollback is a new KubeServe revision running the old version's values.
    obs = await world.backend.deploy(spec(d, revision=3, tag="v1"))
    last = installs(world)[-1]
    assert last["model"]["version"] == "v1"
    assert last["podLabels"] == {"kubeserve.io/revision": "3"}
    assert len(obs.ready(3)) == 1
    assert world.cluster.releases[(NS, release_name(d))].revision == 3


async def test_undeploy_uninstalls(world: World) -> None:
    d = uuid.uuid4()
    await world.backend.deploy(spec(d))
    assert world.secret(d) is not None
    await world.backend.undeploy(d)
    assert (NS, release_name(d)) not in world.cluster.releases
    assert world.secret(d) is None  # the URLs went with the pods
    await world.backend.undeploy(d)  # idempotent
    assert (await world.backend.status(d)).replicas == []


async def test_crash_loop_counts_start_failures_with_the_reason(world: World) -> None:
    d = uuid.uuid4()
    await world.backend.deploy(spec(d))
    world.cluster.modes["v2"] = "crashloop"
    failures = []
    for _ in range(3):
        obs = (await world.backend.reconcile([spec(d, revision=2, tag="v2")]))[d]
        failures.append(obs.start_failures[2])
    assert failures == [1, 2, 3]  # the reconciler fails the deploy at max_start_failures
    assert "CrashLoopBackOff" in obs.last_error[2] and "exit code 1" in obs.last_error[2]
    assert "ModuleNotFoundError" in obs.last_error[2]
    # Meanwhile the last good revision keeps serving.
    assert len(obs.ready(1)) == 1 and obs.endpoints(1)
    assert world.backend.next_pass_in(5.0) == world.config.poll_interval


async def test_oom_killed_is_named(world: World) -> None:
    d = uuid.uuid4()
    world.cluster.modes["v1"] = "oom"
    obs = await world.backend.deploy(spec(d))
    assert obs.start_failures[1] == 1
    assert "OOMKilled" in obs.last_error[1] and "memory" in obs.last_error[1]


async def test_image_pull_failure_is_fatal_at_once(world: World) -> None:
    d = uuid.uuid4()
    world.cluster.modes["v1"] = "imagepull"
    obs = await world.backend.deploy(spec(d))
    assert "ImagePullBackOff" in obs.fatal[1] and "cannot be pulled" in obs.fatal[1]
    await world.backend.reconcile([spec(d)])
    assert len(installs(world)) == 1  # a failed revision is not applied again


@pytest.mark.parametrize(
    ("mode", "reason"),
    [("quota", "quota exceeded: "), ("unschedulable", "FailedScheduling: 0/1 nodes")],
)
async def test_blocked_rollout_fails_at_the_timeout_with_the_reason(
    world: World, mode: str, reason: str
) -> None:
    d = uuid.uuid4()
    world.cluster.modes["v1"] = mode
    obs = await world.backend.deploy(spec(d))
    assert not obs.fatal and reason in obs.last_error[1]  # not failed yet: may still resolve
    world.clock.now += 301
    obs = (await world.backend.reconcile([spec(d)]))[d]
    assert obs.fatal[1].startswith("revision 1 not ready within 300s (0/1 ready): " + reason)
    if mode == "quota":
        assert "exceeded quota: tenant-quota" in obs.fatal[1]


async def test_slow_rollout_is_polled_not_waited_for(world: World) -> None:
    d = uuid.uuid4()
    world.cluster.modes["v1"] = "slow"
    obs = await world.backend.deploy(spec(d))
    assert [r.status for r in obs.replicas] == [ReplicaStatus.STARTING]
    assert world.backend.next_pass_in(5.0) == world.config.poll_interval
    world.cluster.modes["v1"] = "ready"
    obs = (await world.backend.reconcile([spec(d)]))[d]
    assert len(obs.ready(1)) == 1 and len(installs(world)) == 1


async def test_transient_errors_retry_and_permanent_ones_fail(world: World) -> None:
    d = uuid.uuid4()
    world.helm.fail_next(
        "install_or_upgrade",
        HelmError(
            "Error: another operation (install/upgrade/rollback) is in progress", transient=True
        ),
        times=2,
    )
    first = (await world.backend.reconcile([spec(d)]))[d]
    second = (await world.backend.reconcile([spec(d)]))[d]
    assert "in progress" in first.last_error[1] and not first.fatal
    assert [k for k, _ in first.events] == ["backend_retry"] and second.events == []  # once
    third = (await world.backend.reconcile([spec(d)]))[d]
    assert len(third.ready(1)) == 1
    # A 5xx reading pods is transient too (read again once the observe interval passed).
    world.clock.now += world.config.observe_interval
    world.kube.fail_next("list_pods", ClusterError("HTTP 503", status=503, transient=True))
    obs = (await world.backend.reconcile([spec(d)]))[d]
    assert "503" in obs.last_error[1] and not obs.fatal
    # 403 (RBAC) or 422 (invalid) cannot be retried away.
    other = uuid.uuid4()
    world.helm.fail_next(
        "install_or_upgrade",
        HelmError('Error: deployments.apps is forbidden: User "x" cannot create', transient=False),
    )
    obs = (await world.backend.reconcile([spec(d), spec(other)]))[other]
    assert "forbidden" in obs.fatal[1]
    # ...but a running revision is never failed by a refused change: reported, retried.
    world.helm.fail_next(
        "install_or_upgrade",
        HelmError("Error: deployments.apps is forbidden: cannot patch", transient=False),
    )
    obs = (await world.backend.reconcile([spec(d, replicas=2)]))[d]
    assert not obs.fatal and "forbidden" in obs.last_error[1]
    assert [k for k, _ in obs.events] == ["backend_refused"]
    obs = (await world.backend.reconcile([spec(d, replicas=2)]))[d]
    assert installs(world)[-1]["replicaCount"] == 2 and len(obs.ready(1)) == 2


async def test_the_tenants_pod_quota_bounds_each_release(world: World) -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    await world.backend.reconcile([spec(a, replicas=2), spec(b, replicas=2)])
    assert [v["quota"] for v in installs(world)] == [{"pods": 3}, {"pods": 3}]  # a surge each
    await world.backend.reconcile([spec(a, replicas=2), spec(b, revision=2, tag="v2", replicas=3)])
    # 5 pods desired = the quota: no surge pod fits for either (the chart then replaces one pod
    # at a time; a surge pod would be refused and stall the rollout).
    latest = {v["deploymentId"]: v["quota"]["pods"] for v in installs(world)}
    assert latest == {str(a): 2, str(b): 3}


async def test_autoscaled_releases_share_the_quota_and_say_what_their_hpa_does(
    world: World,
) -> None:
    policy = AutoscalingPolicy(min_replicas=0, max_replicas=3, target_concurrency=2)
    a, b = uuid.uuid4(), uuid.uuid4()

    def auto(d: uuid.UUID) -> DeploymentSpec:
        return dataclasses.replace(spec(d), autoscaling=policy)

    alone = await world.backend.reconcile([auto(a)])
    (values,) = installs(world)
    hpa = values["autoscaling"]
    assert (hpa["enabled"], hpa["minReplicas"], hpa["maxReplicas"]) == (True, 1, 3)
    assert values["quota"] == {"pods": 4}  # its HPA's 3 and a surge pod fit the 5
    # The activity says min_replicas 0 is not scale to zero here.
    (applied,) = [m for kind, m in alone[a].events if kind == "release_applied"]
    assert "HPA 1-3 replicas" in applied and "an HPA cannot scale to zero" in applied

    await world.backend.reconcile([auto(a), auto(b)])
    latest = {v["deploymentId"]: v for v in installs(world)}
    # Each HPA may still grow into the tenant's free pods (the other wants 1 now: up to 3),
    # but with the other at its maximum too, 3 + 3 + a surge pod exceed the 5: neither release
    # counts on a surge pod the quota could refuse (the chart replaces a pod at a time).
    for d in (a, b):
        assert latest[str(d)]["autoscaling"]["maxReplicas"] == 3
        assert latest[str(d)]["quota"] == {"pods": 3}


async def test_restart_adopts_reinstalls_and_uninstalls_orphans(world: World) -> None:
    kept, missing, deleted, new = (uuid.uuid4() for _ in range(4))
    await world.backend.reconcile([spec(kept), spec(missing), spec(deleted)])
    assert len(installs(world)) == 3
    await world.backend.close()
    # While no deployer ran: someone uninstalled one release by hand, and the user deleted
    # another deployment (its DeleteRequested was handled by the API: gone from the DB).
    del world.cluster.releases[(NS, release_name(missing))]
    backend = world.restart()
    await backend.start()
    result = await backend.reconcile([spec(kept), spec(missing), spec(new)])
    installed = {v["deploymentId"] for v in installs(world)}
    assert installed == {str(missing), str(new)}  # `kept` adopted without an upgrade
    assert (NS, release_name(deleted)) not in world.cluster.releases  # orphan uninstalled
    assert ("uninstall", (release_name(deleted), NS)) in world.helm.calls
    assert [k for k, _ in result[kept].events] == ["release_adopted", "rollout_ready"]
    assert all(len(result[x].ready(1)) == 1 for x in (kept, missing, new))
    # A release vanishing while the deployer runs is noticed by the periodic scan.
    del world.cluster.releases[(NS, release_name(kept))]
    await backend.reconcile([spec(kept), spec(missing), spec(new)])
    assert len(installs(world)) == 2  # not yet: the scan runs every scan_interval
    world.clock.now += 61
    result = await backend.reconcile([spec(kept), spec(missing), spec(new)])
    assert [v["deploymentId"] for v in installs(world)][-1] == str(kept)
    assert "release_missing" in [k for k, _ in result[kept].events]
    # Releases that are not ours are left alone.
    assert all(m != "uninstall" or a[0].startswith("kubeserve-") for m, a in world.helm.calls)


async def test_restart_recovers_a_release_stuck_pending(world: World) -> None:
    d = uuid.uuid4()
    await world.backend.deploy(spec(d))
    await world.backend.deploy(spec(d, revision=2, tag="v2"))
    world.cluster.releases[(NS, release_name(d))].status = "pending-upgrade"  # deployer died
    backend = world.restart()
    await backend.start()
    obs = (await backend.reconcile([spec(d, revision=2, tag="v2")]))[d]
    assert ("rollback", (release_name(d), NS, None)) in world.helm.calls
    assert "release_recovered" in [k for k, _ in obs.events]
    assert installs(world)[-1]["model"]["version"] == "v2" and len(obs.ready(2)) == 1


# -- the values are what charts/model-serving accepts ----------------------------------------------


@pytest.mark.parametrize(
    "serving",
    [
        CONFIG,
        KubernetesSettings(),
        KubernetesSettings(
            runtime_image="kubeserve/runtime-base@sha256:" + "b" * 64,
            autoscaling_enabled=False,
            service_monitor=False,
            ingress_enabled=True,
            ingress_tls_secret="tls",
        ),
    ],
    ids=["ingress", "defaults", "no-hpa-digest-tls-no-monitor"],
)
async def test_helm_values_render_valid_restricted_manifests(
    serving: KubernetesSettings, store: S3ArtifactStore
) -> None:
    helm = pytest.importorskip("helm_python")
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    import yaml

    w = World(store, serving)
    d = uuid.uuid4()
    autoscaled = dataclasses.replace(
        spec(d, replicas=2),
        autoscaling=AutoscalingPolicy(min_replicas=2, max_replicas=3, target_concurrency=2),
    )
    await w.backend.deploy(autoscaled)
    (values,) = installs(w)
    manifests = helm.Chart.load(REPO / "charts" / "model-serving").render(
        values, name=release_name(d), namespace=NS
    )
    objects = [
        doc
        for path, text in manifests.items()
        if path.endswith(".yaml")
        for doc in yaml.safe_load_all(text)
        if doc
    ]
    kinds = {o["kind"] for o in objects}
    assert {"Deployment", "Service"} <= kinds
    assert ("Ingress" in kinds) == serving.ingress_enabled
    assert ("HorizontalPodAutoscaler" in kinds) == serving.autoscaling_enabled
    assert ("ServiceMonitor" in kinds) == serving.service_monitor
    for obj in objects:
        if obj["kind"] == "ServiceMonitor":
            continue  # a CRD: tests/deploy checks it against its own schema
        kubernetes_validate.validate(obj, "1.30.0", strict=True)
        for pod in pod_specs(obj):
            assert_restricted(obj["metadata"]["name"], pod, token_allowed=False)
            assert pod["serviceAccountName"] == "runtime"
            assert pod["containers"][0]["ports"][0]["containerPort"] == 8080
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    assert deployment["metadata"]["name"] == release_name(d)
    template_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert template_labels["kubeserve.io/revision"] == "1"
    assert template_labels["app.kubernetes.io/instance"] == release_name(d)  # our pod selector
    service = next(o for o in objects if o["kind"] == "Service")
    assert service_url(d, NS) == f"http://{service['metadata']['name']}.{NS}.svc.cluster.local"
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    assert volumes["artifacts"]["secret"]["secretName"] == artifacts_secret_name(d)
    assert volumes["artifacts"]["secret"]["items"] == [{"key": "r1.json", "path": "manifest.json"}]


async def test_a_misspelt_value_is_refused_by_the_chart_schema(store: S3ArtifactStore) -> None:
    helm = pytest.importorskip("helm_python")
    w = World(store)
    await w.backend.deploy(spec(uuid.uuid4()))
    (values,) = installs(w)
    values["replicaCont"] = 2
    with pytest.raises(helm.HelmError, match="replicaCont"):
        helm.Chart.load(REPO / "charts" / "model-serving").render(values, name="x", namespace=NS)


# -- artifact access: presigned URLs of the version's own files ------------------------------------


async def test_pods_get_presigned_urls_of_their_versions_files_only(world: World) -> None:
    d = uuid.uuid4()
    await world.backend.deploy(spec(d, tag="v2"))
    manifest = world.manifest(d)
    assert manifest is not None and manifest["version"] == "v2"
    files = {f["path"]: f for f in manifest["files"]}
    # The model, its requirements and wheels; not the build report, nothing of other versions.
    assert set(files) == {"model.joblib", "requirements.txt", WHEEL}
    assert files["model.joblib"]["sha256"] == hashlib.sha256(model_bytes("v2")).hexdigest()
    async with httpx.AsyncClient(timeout=10) as http:
        for path, expected in [
            ("model.joblib", model_bytes("v2")),
            ("requirements.txt", b"tinyextra==1.0\n"),
            (WHEEL, b"PK wheel bytes"),
        ]:
            got = await http.get(files[path]["url"])
            assert got.status_code == 200 and got.content == expected, path
            assert files[path]["size"] == len(expected)
    # Each URL is a signed GET of exactly its object, valid for the configured time (S3 then
    # refuses it for any other key; moto's server does not check signatures, so that part is
    # S3's guarantee, not tested here).
    for path, entry in files.items():
        url = httpx.URL(entry["url"])
        assert url.path == f"/{BUCKET}/{key('v2', path)}"
        assert url.params["X-Amz-Expires"] == str(world.config.artifact_url_ttl_seconds)
        assert url.params["X-Amz-Signature"] and url.params["X-Amz-Algorithm"]
    # No credential anywhere in the namespace: the Secret holds URLs and nothing else.
    secret = world.secret(d)
    assert secret is not None and set(secret["data"]) == {"r1.json"}
    assert secret["metadata"]["labels"]["kubeserve.io/deployment-id"] == str(d)


async def test_a_rollout_keeps_the_serving_revisions_urls_until_it_is_done(world: World) -> None:
    d = uuid.uuid4()
    await world.backend.deploy(spec(d))
    rolling = dataclasses.replace(spec(d, revision=2, tag="v2"), fallback=spec(d).target)
    world.cluster.modes["v2"] = "slow"
    await world.backend.reconcile([rolling])
    secret = world.secret(d)
    assert secret is not None and set(secret["data"]) == {"r1.json", "r2.json"}
    world.cluster.modes["v2"] = "ready"
    await world.backend.reconcile([spec(d, revision=2, tag="v2")])  # no fallback left
    secret = world.secret(d)
    assert secret is not None and set(secret["data"]) == {"r2.json"}


async def test_urls_are_signed_again_before_they_expire(world: World) -> None:
    d = uuid.uuid4()
    await world.backend.deploy(spec(d))
    first = world.manifest(d)
    assert first is not None
    ttl = world.config.artifact_url_ttl_seconds
    assert first["expires_at"] == 1_700_000_000 + int(world.clock.now) + ttl
    world.clock.now += ttl / 2 - 60
    await world.backend.reconcile([spec(d)])
    assert world.manifest(d) == first  # more than half the validity left: unchanged
    world.clock.now += 120
    await world.backend.reconcile([spec(d)])
    second = world.manifest(d)
    assert second is not None and second["expires_at"] > first["expires_at"]
    secret_applies = [a for m, a in world.kube.calls if m == "apply" and a[0] == "Secret"]
    assert len(secret_applies) == 2
    assert len(installs(world)) == 1  # new URLs are no new release: pods are not rolled


async def test_a_missing_artifact_fails_the_revision_and_a_store_outage_is_retried(
    world: World, store: S3ArtifactStore
) -> None:
    d = uuid.uuid4()
    gone = dataclasses.replace(spec(d).target, artifact_uri=f"s3://{BUCKET}/models/x/y/v9/m.pkl")
    obs = await world.backend.deploy(dataclasses.replace(spec(d), target=gone))
    assert "missing from the object store" in obs.fatal[1]
    assert installs(world) == []  # nothing is installed that could never start
    # The store away (nothing listens on its port): retried, reported once, not failed.
    down = S3ArtifactStore(
        BUCKET,
        endpoint_url=f"http://127.0.0.1:{free_port()}",
        access_key_id="testing",
        secret_access_key="testing",
        max_attempts=1,
        connect_timeout=1,
    )
    w = World(down)
    await w.backend.start()
    e = uuid.uuid4()
    obs = await w.backend.deploy(spec(e))
    assert not obs.fatal and obs.last_error[1]
    assert [k for k, _ in obs.events] == ["backend_retry"]
    await down.close()


# -- leadership -----------------------------------------------------------------------------------


async def test_only_the_lease_holder_acts(world: World) -> None:
    leader = world.restart(leader="deployer-a")
    await leader.start()
    assert leader.elector is not None and await leader.elector.attempt()
    standby = KubernetesBackend(
        FakeHelm(world.cluster),
        FakeKubernetes(world.cluster),
        world.config,
        leader.artifacts,
        elector=LeaderElector(
            FakeKubernetes(world.cluster), world.config, identity="deployer-b", clock=world.clock
        ),
        clock=world.clock,
    )
    assert standby.elector is not None and not await standby.elector.attempt()
    d = uuid.uuid4()
    assert await standby.reconcile([spec(d)]) == {}
    assert standby.helm.count("install_or_upgrade") == 0  # type: ignore[attr-defined]
    assert not standby.active and standby.next_pass_in(5.0) == 5.0
    obs = (await leader.reconcile([spec(d)]))[d]
    assert len(obs.ready(1)) == 1
    # The leader steps down; the standby takes over and adopts what runs, without an upgrade.
    await leader.elector.release()
    assert not leader.active and await leader.reconcile([spec(d)]) == {}
    assert await standby.elector.attempt()
    obs = (await standby.reconcile([spec(d)]))[d]
    assert len(obs.ready(1)) == 1
    assert standby.helm.count("install_or_upgrade") == 0  # type: ignore[attr-defined]
    assert "release_adopted" in [k for k, _ in obs.events]
    await standby.elector.stop()


async def test_a_tenant_with_live_deployments_is_not_retired(world: World) -> None:
    d = uuid.uuid4()
    await world.backend.reconcile([spec(d)])
    with pytest.raises(TransientError, match="still has 1 live deployment"):
        await world.backend.retire_tenant(OWNER)
    assert NS in world.cluster.namespaces()
    await world.backend.reconcile([])  # the deployment stopped (orphan release uninstalled)
    await world.backend.retire_tenant(OWNER)
    assert NS not in world.cluster.namespaces()
    # A later pass provisions nothing for the retired tenant.
    await world.backend.reconcile([])
    assert NS not in world.cluster.namespaces()
