"""The whole deployer (API, consumers, outbox, reconcile loop on PostgreSQL and RabbitMQ) on the
kubernetes backend, whose Helm and Kubernetes ports are fakes sharing one `FakeCluster`: what a
user sees through the API and the events - Running with the in-cluster Service URL, scale,
rollback, a failure with the cluster's reason, delete - plus tenant provisioning on
`UserRegistered` (once per event), and a deployer restart on the same database and cluster that
adopts, reinstalls and uninstalls."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from deployer_helpers import Deployer, Events, Seeder
from k8s_fakes import FakeCluster, FakeHelm, FakeKubernetes
from kubeserve_common.events.catalog import UserRegistered
from kubeserve_common.events.envelope import CloudEvent
from kubeserve_common.storage.s3 import S3ArtifactStore
from kubeserve_common.testing.waiting import wait_until
from kubeserve_deployer.backends.kubernetes.artifacts import ArtifactAccess
from kubeserve_deployer.backends.kubernetes.backend import KubernetesBackend
from kubeserve_deployer.backends.kubernetes.leader import LeaderElector
from kubeserve_deployer.backends.kubernetes.release import release_name, service_url
from kubeserve_deployer.backends.kubernetes.settings import KubernetesSettings

CONFIG = KubernetesSettings(poll_interval=0.05, release_scan_interval=0.2)


def make_backend(
    cluster: FakeCluster, store: S3ArtifactStore, *, leader: str | None = None
) -> KubernetesBackend:
    """A backend on the shared fake cluster; `leader`: its identity in a Lease election."""
    kube = FakeKubernetes(cluster)
    config = CONFIG
    elector = None
    if leader is not None:
        config = CONFIG.model_copy(
            update={
                "lease_duration_seconds": 3.0,
                "renew_deadline_seconds": 2.0,
                "retry_period_seconds": 0.2,
            }
        )
        elector = LeaderElector(kube, config, identity=leader)
    access = ArtifactAccess(store, store, ttl_seconds=config.artifact_url_ttl_seconds)
    return KubernetesBackend(FakeHelm(cluster), kube, config, access, elector=elector)


@pytest.fixture
def cluster() -> FakeCluster:
    return FakeCluster()


@pytest.fixture
async def k8s_deployer(
    start_deployer: Callable[..., Any], cluster: FakeCluster, s3: S3ArtifactStore
) -> Deployer:
    return await start_deployer(
        backend=make_backend(cluster, s3), runtime_backend="kubernetes", reconcile_interval=0.2
    )


async def _deploy(deployer: Deployer, seeder: Seeder, owner: uuid.UUID, **body: Any) -> str:
    model_id = await seeder.model(owner)
    v1 = await seeder.version(owner, model_id, "v1")
    await deployer.wait_version(owner, v1.version_id)
    async with deployer.client(owner) as c:
        response = await c.post("/deployments", json={"version_id": str(v1.version_id), **body})
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


async def test_deploy_scale_rollback_delete_on_the_kubernetes_backend(
    k8s_deployer: Deployer, seeder: Seeder, events: Events, cluster: FakeCluster
) -> None:
    owner = uuid.uuid4()
    ns = f"user-{owner}"
    model_id = await seeder.model(owner)
    v1 = await seeder.version(owner, model_id, "v1")
    v2 = await seeder.version(owner, model_id, "v2")
    for v in (v1, v2):
        await k8s_deployer.wait_version(owner, v.version_id)
    async with k8s_deployer.client(owner) as c:
        created = (await c.post("/deployments", json={"version_id": str(v1.version_id)})).json()
    d = created["id"]
    body = await k8s_deployer.wait_status(owner, d, "Running")
    service = service_url(uuid.UUID(d), ns)
    assert service == f"http://model-{d}.{ns}.svc.cluster.local"
    assert body["replicas"] == {"desired": 1, "ready": 1}
    assert await k8s_deployer.wait_route(d, 1) == [service]
    await wait_until(lambda: bool(events.of("ready", d)), message="DeploymentReady")
    assert events.of("ready", d)[0]["endpoints"] == [service]
    assert ns in cluster.namespaces()  # provisioned before the first release
    release = cluster.releases[(ns, release_name(uuid.UUID(d)))]
    assert release.values["model"]["version"] == "v1"
    # The pod's manifest downloads exactly its version's artifact, with no credentials.
    manifest = FakeKubernetes(cluster).manifest(release)
    assert manifest is not None
    (entry,) = manifest["files"]
    expected = hashlib.sha256(seeder.models.v1).hexdigest()
    assert entry["path"] == "model.joblib" and entry["sha256"] == expected
    async with httpx.AsyncClient(timeout=10) as http:
        got = await http.get(entry["url"])
    assert got.status_code == 200 and hashlib.sha256(got.content).hexdigest() == expected

    async with k8s_deployer.client(owner) as c:
        assert (await c.patch(f"/deployments/{d}", json={"replicas": 3})).status_code == 202

    async def scaled() -> bool:
        async with k8s_deployer.client(owner) as c:
            got = (await c.get(f"/deployments/{d}")).json()
        return bool(got["replicas"] == {"desired": 3, "ready": 3})

    await wait_until(scaled, message="3 ready replicas")
    assert release.values["replicaCount"] == 3
    assert await k8s_deployer.wait_route(d, 1) == [service]  # one Service URL for 3 pods

    async with k8s_deployer.client(owner) as c:
        assert (
            await c.patch(f"/deployments/{d}", json={"version_id": str(v2.version_id)})
        ).status_code == 202
    await wait_until(
        lambda: (
            cluster.releases[(ns, release_name(uuid.UUID(d)))].values["model"]["version"] == "v2"
        ),
        message="upgraded to v2",
    )
    await k8s_deployer.wait_status(owner, d, "Running")
    async with k8s_deployer.client(owner) as c:
        assert (await c.post(f"/deployments/{d}/rollback", json={})).status_code == 202
    body = await k8s_deployer.wait_status(owner, d, "Running")
    assert body["revision"] == 3 and body["serving_revision"] == 3
    values = cluster.releases[(ns, release_name(uuid.UUID(d)))].values
    assert (
        values["model"]["version"] == "v1" and values["podLabels"]["kubeserve.io/revision"] == "3"
    )

    async with k8s_deployer.client(owner) as c:
        assert (await c.delete(f"/deployments/{d}")).status_code == 202
    await wait_until(lambda: bool(events.of("deleted", d)), message="DeploymentDeleted")
    assert (ns, release_name(uuid.UUID(d))) not in cluster.releases
    assert not [o for o in cluster.in_namespace(ns) if o["kind"] == "Secret"]  # URLs gone too
    async with k8s_deployer.client(owner) as c:
        assert (await c.get(f"/deployments/{d}")).status_code == 404


async def test_a_crash_looping_model_fails_with_the_clusters_reason(
    k8s_deployer: Deployer, seeder: Seeder, events: Events, cluster: FakeCluster
) -> None:
    owner = uuid.uuid4()
    cluster.modes["v1"] = "crashloop"
    d = await _deploy(k8s_deployer, seeder, owner)
    body = await k8s_deployer.wait_status(owner, d, "Failed")
    assert "CrashLoopBackOff" in body["failure_reason"]
    assert "ModuleNotFoundError: xgboost" in body["failure_reason"]
    await wait_until(lambda: bool(events.of("failed", d)), message="DeploymentFailed")
    assert "CrashLoopBackOff" in events.of("failed", d)[0]["reason"]


async def test_an_unpullable_image_fails_at_once(
    k8s_deployer: Deployer, seeder: Seeder, cluster: FakeCluster
) -> None:
    owner = uuid.uuid4()
    cluster.modes["v1"] = "imagepull"
    d = await _deploy(k8s_deployer, seeder, owner)
    body = await k8s_deployer.wait_status(owner, d, "Failed")
    assert "ImagePullBackOff" in body["failure_reason"]


async def test_user_registered_provisions_the_tenant_once(
    k8s_deployer: Deployer, rabbit_bus_factory: Callable[..., Any], cluster: FakeCluster
) -> None:
    user = uuid.uuid4()
    bus = rabbit_bus_factory("auth")
    await bus.connect()
    event = CloudEvent.create(
        UserRegistered(user_id=user, email="new@example.com", role="user"), service="auth"
    )
    await bus.publish(event)
    await bus.publish(event)  # redelivered: the inbox makes it a no-op
    await wait_until(lambda: f"user-{user}" in cluster.namespaces(), message="namespace")
    kinds = sorted(o["kind"] for o in cluster.in_namespace(f"user-{user}"))
    assert kinds == sorted(
        ["Namespace", "RoleBinding", "ResourceQuota", "LimitRange", "ServiceAccount"]
        + ["NetworkPolicy"] * 3
    )

    async def claimed_once() -> bool:
        from kubeserve_common.db.base import inbox_table
        from sqlalchemy import func, select

        async with k8s_deployer.container.uow() as uow:
            stmt = select(func.count()).where(
                inbox_table.c.consumer == "users", inbox_table.c.event_id == event.id
            )
            return int((await uow.session.execute(stmt)).scalar_one()) == 1

    await wait_until(claimed_once, message="inbox claim")
    backend = k8s_deployer.container.backend
    assert isinstance(backend, KubernetesBackend)
    applies = [a for m, a in backend.kube.calls if m == "apply" and a[0] == "Namespace"]  # type: ignore[attr-defined]
    assert applies == [("Namespace", f"user-{user}")]


async def test_restart_on_the_same_database_and_cluster(
    start_deployer: Callable[..., Any], seeder: Seeder, cluster: FakeCluster, s3: S3ArtifactStore
) -> None:
    first = await start_deployer(
        backend=make_backend(cluster, s3), runtime_backend="kubernetes", reconcile_interval=0.2
    )
    owner = uuid.uuid4()
    ns = f"user-{owner}"
    kept = await _deploy(first, seeder, owner)
    missing = await _deploy(first, seeder, owner)
    for d in (kept, missing):
        await first.wait_status(owner, d, "Running")
    kept_revision = cluster.releases[(ns, release_name(uuid.UUID(kept)))].revision
    await first.stop()
    # While no deployer runs: a release is uninstalled by hand, and a leftover release of a
    # deployment the database does not know appears (e.g. restored from an old backup).
    del cluster.releases[(ns, release_name(uuid.UUID(missing)))]
    orphan = uuid.uuid4()
    await FakeHelm(cluster).install_or_upgrade(
        release_name(orphan), ns, dict(cluster.releases[(ns, release_name(uuid.UUID(kept)))].values)
    )
    second = await start_deployer(
        backend=make_backend(cluster, s3), runtime_backend="kubernetes", reconcile_interval=0.2
    )
    await wait_until(
        lambda: (ns, release_name(uuid.UUID(missing))) in cluster.releases, message="reinstalled"
    )
    await wait_until(
        lambda: (ns, release_name(orphan)) not in cluster.releases, message="orphan uninstalled"
    )
    assert await second.wait_route(kept, 1)
    assert await second.wait_route(missing, 1)
    # Adopted as is: no upgrade of the release that was fine.
    assert cluster.releases[(ns, release_name(uuid.UUID(kept)))].revision == kept_revision
    async with second.client(owner) as c:
        body = (await c.get(f"/deployments/{kept}")).json()
    assert body["status"] == "Running"
    assert any(e["kind"] == "release_adopted" for e in body["events"])


async def test_two_deployers_one_leader_and_a_takeover(
    start_deployer: Callable[..., Any], seeder: Seeder, cluster: FakeCluster, s3: S3ArtifactStore
) -> None:
    """Two deployer replicas on one database and cluster: only the Lease holder runs Helm; when
    it stops (releasing the Lease), the standby takes over and converges what changed."""
    a_backend = make_backend(cluster, s3, leader="deployer-a")
    a = await start_deployer(
        backend=a_backend, runtime_backend="kubernetes", reconcile_interval=0.2
    )
    await wait_until(lambda: a_backend.active, message="a leads")
    b_backend = make_backend(cluster, s3, leader="deployer-b")
    b = await start_deployer(
        backend=b_backend, runtime_backend="kubernetes", reconcile_interval=0.2
    )
    owner = uuid.uuid4()
    ns = f"user-{owner}"
    first = await _deploy(b, seeder, owner)  # created through either API
    await a.wait_status(owner, first, "Running")
    assert not b_backend.active
    assert b_backend.helm.count("install_or_upgrade") == 0  # type: ignore[attr-defined]
    assert a_backend.helm.count("install_or_upgrade") == 1  # type: ignore[attr-defined]
    (lease,) = cluster.leases.values()
    assert lease.holder == "deployer-a" and lease.transitions == 0

    await a.stop()  # a graceful stop releases the Lease
    await wait_until(lambda: b_backend.active, message="b takes over")
    assert cluster.leases[("kubeserve", "kubeserve-deployer")].holder == "deployer-b"
    second = await _deploy(b, seeder, owner)
    await b.wait_status(owner, second, "Running")
    assert (ns, release_name(uuid.UUID(second))) in cluster.releases
    # The first release was adopted, not reinstalled, by the new leader.
    assert b_backend.helm.count("install_or_upgrade") == 1  # type: ignore[attr-defined]
