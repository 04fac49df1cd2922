"""The kubernetes runtime backend through the RuntimeBackend port, on `FakeHelm` and
`FakeKubernetes` (no cluster here): deploy, scale, roll out and back, delete, failures with the
reason the cluster gives (CrashLoopBackOff, OOMKilled, ImagePullBackOff, quota, scheduling),
transient and permanent API errors, and a restart that adopts, reinstalls and uninstalls. The
values handed to Helm are rendered with the real Helm engine (charts/model-serving's schema
applies) and every rendered object validated and walked for the restricted rules."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from k8s_fakes import FakeCluster, FakeHelm, FakeKubernetes
from kubeserve_deployer.adapters.helm import HelmError
from kubeserve_deployer.adapters.kubernetes import ClusterError
from kubeserve_deployer.adapters.kubernetes_backend import (
    KubernetesBackend,
    KubernetesBackendConfig,
)
from kubeserve_deployer.adapters.runtime_backend import RuntimeBackend
from kubeserve_deployer.adapters.tenants import KubernetesTenantProvisioner
from kubeserve_deployer.domain.model import DeploymentSpec, ReplicaStatus, RevisionTarget
from kubeserve_deployer.domain.release import ServingConfig, release_name
from kubeserve_deployer.domain.tenancy import TenancyConfig

from tests.deploy.k8s_checks import assert_restricted, pod_specs

REPO = Path(__file__).resolve().parents[3]
OWNER = uuid.UUID("0b7d6f1c-2a9e-4c3e-9a51-2d8e4f7b1c01")
NS = f"user-{OWNER}"
SERVING = ServingConfig(
    image="registry.example.com/kubeserve/runtime-base:0.1.0",
    s3_endpoint="http://minio.minio.svc.cluster.local:9000",
    s3_secret_name="kubeserve-s3-read",
    ingress_enabled=True,
    ingress_hostname="kubeserve.example.com",
    ingress_auth_url="http://kubeserve-gateway.kubeserve.svc.cluster.local/internal/auth/predict",
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class World:
    """One fake cluster and a backend on it; `restart()` builds a new backend on the same one."""

    def __init__(self, config: KubernetesBackendConfig | None = None) -> None:
        self.cluster = FakeCluster()
        self.clock = Clock()
        self.config = config or KubernetesBackendConfig(
            serving=SERVING, rollout_timeout=300, scan_interval=60
        )
        self.restart()

    def restart(self) -> KubernetesBackend:
        self.helm = FakeHelm(self.cluster)
        self.kube = FakeKubernetes(self.cluster)
        tenants = KubernetesTenantProvisioner(self.kube, TenancyConfig())
        self.backend = KubernetesBackend(
            self.helm, self.kube, tenants, self.config, clock=self.clock
        )
        return self.backend


def spec(
    deployment_id: uuid.UUID,
    revision: int = 1,
    tag: str = "v1",
    replicas: int = 1,
    owner: uuid.UUID = OWNER,
) -> DeploymentSpec:
    target = RevisionTarget(
        revision=revision,
        version_id=uuid.uuid4(),
        version_tag=tag,
        artifact_uri=f"s3://kubeserve/models/{owner}/m-1/{tag}/model.joblib",
        sha256="0" * 64,
        filename="model.joblib",
        replicas=replicas,
        wheelhouse_uri=f"s3://kubeserve/models/{owner}/m-1/{tag}/wheelhouse/",
    )
    return DeploymentSpec(deployment_id, owner, "Iris Classifier", target)


@pytest.fixture
async def world() -> World:
    w = World()
    await w.backend.start()
    return w


def installs(world: World) -> list[dict[str, Any]]:
    return [args[2] for method, args in world.helm.calls if method == "install_or_upgrade"]


def test_the_backend_satisfies_the_port(world: World) -> None:
    backend: RuntimeBackend = world.backend  # type-checked by mypy; and at run time:
    for name in ("start", "close", "deploy", "scale", "undeploy", "status", "reconcile"):
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
        "uri": f"s3://kubeserve/models/{OWNER}/m-1/v1/",  # the folder: requirements + wheels too
        "wheelhouseUri": f"s3://kubeserve/models/{OWNER}/m-1/v1/wheelhouse/",
    }
    assert values["image"]["registry"] == "registry.example.com"
    assert values["image"]["repository"] == "kubeserve/runtime-base"
    assert values["s3"]["existingSecret"] == "kubeserve-s3-read"
    assert values["replicaCount"] == 1 and values["autoscaling"]["enabled"] is False
    url = f"http://{release_name(d)}.{NS}.svc.cluster.local"
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
    assert obs.endpoints(1) == [f"http://{release_name(d)}.{NS}.svc.cluster.local"] * 3


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
    await world.backend.undeploy(d)
    assert (NS, release_name(d)) not in world.cluster.releases
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


async def test_full_quota_rolls_one_pod_at_a_time(world: World) -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    await world.backend.reconcile([spec(a, replicas=2), spec(b, replicas=2)])
    assert installs(world)[-1]["updateStrategy"] == {
        "type": "RollingUpdate",
        "maxSurge": 1,
        "maxUnavailable": 0,
    }
    await world.backend.reconcile([spec(a, replicas=2), spec(b, revision=2, tag="v2", replicas=3)])
    # 5 pods desired = the quota: a surge pod would be refused and stall the rollout.
    assert installs(world)[-1]["updateStrategy"]["maxSurge"] == 0


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
        SERVING,
        ServingConfig(),
        ServingConfig(
            image="kubeserve/runtime-base@sha256:" + "b" * 64,
            autoscaling_enabled=True,
            service_monitor=True,
            ingress_enabled=True,
            ingress_tls_secret="tls",
        ),
    ],
    ids=["ingress", "defaults", "hpa-monitor-digest-tls"],
)
async def test_helm_values_render_valid_restricted_manifests(serving: ServingConfig) -> None:
    helm = pytest.importorskip("helm_python")
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    import yaml

    w = World(KubernetesBackendConfig(serving=serving))
    d = uuid.uuid4()
    await w.backend.deploy(spec(d, replicas=2))
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
    assert service["metadata"]["name"] == release_name(d)  # the endpoint's host


async def test_a_misspelt_value_is_refused_by_the_chart_schema() -> None:
    helm = pytest.importorskip("helm_python")
    w = World()
    await w.backend.deploy(spec(uuid.uuid4()))
    (values,) = installs(w)
    values["replicaCont"] = 2
    with pytest.raises(helm.HelmError, match="replicaCont"):
        helm.Chart.load(REPO / "charts" / "model-serving").render(values, name="x", namespace=NS)
