"""The cold-start prediction on the kubernetes backend (fake cluster ports, real PostgreSQL,
RabbitMQ and S3): each pod's created -> Ready time, as the cluster reports it, is learnt once
per pod - not again on the cached steady observations nor after a deployer restart - and the
deployment's prediction for `kubernetes-pod` becomes what the pods took."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from deployer_helpers import Deployer, Seeder
from k8s_fakes import FakeCluster
from kubeserve_common.storage.s3 import S3ArtifactStore
from kubeserve_common.testing.waiting import wait_until
from test_cold_start_learning import built_version, learnt_starts, measured_replicas
from test_kubernetes_lifecycle import make_backend


async def test_each_pod_start_is_learnt_once(
    start_deployer: Callable[..., Any], seeder: Seeder, s3: S3ArtifactStore
) -> None:
    cluster = FakeCluster(pod_start=timedelta(milliseconds=2500))

    async def deployer() -> Deployer:
        started: Deployer = await start_deployer(
            backend=make_backend(cluster, s3), runtime_backend="kubernetes", reconcile_interval=0.2
        )
        return started

    first = await deployer()
    owner = uuid.uuid4()
    v = await built_version(seeder, owner, trial_ms=20.0)
    await first.wait_version(owner, v.version_id)
    async with first.client(owner) as api:
        created = await api.post("/deployments", json={"version_id": str(v.version_id)})
        assert created.status_code == 202, created.text
        dep = created.json()["id"]
        before = (await api.get("/cold-start", params={"version_id": str(v.version_id)})).json()
    body = await measured_replicas(first, owner, dep, 1)
    [replica] = body["replica_details"]
    assert replica["backend"] == "kubernetes-pod"
    # A pod measures its start as a whole: what the prior phases (load 1.2 x the trial, first
    # ready 500 ms) do not explain is its start (scheduling, image, containers).
    assert replica["cold_start"] == {
        "backend": "kubernetes-pod",
        "phases_ms": {"start": 2500.0 - 1.2 * 20.0 - 500.0},
        "total_ms": 2500.0,
    }
    predicted = body["predicted_cold_start"]
    assert predicted["backend"] == "kubernetes-pod" and predicted["total_ms"] == 2500.0
    assert predicted["observations"] == 1 and predicted["label"] == "estimate, not yet calibrated"
    prior = next(p for p in before["predictions"] if p["backend"] == "kubernetes-pod")
    assert prior["total_ms"] != 2500.0 and prior["observations"] == 0

    passes = first.container.reconciler.passes
    await wait_until(lambda: first.container.reconciler.passes >= passes + 5, message="passes")
    await first.stop()
    second = await deployer()
    passes = second.container.reconciler.passes
    await wait_until(lambda: second.container.reconciler.passes >= passes + 5, message="passes")
    assert await learnt_starts(second) == 1

    async with second.client(owner) as api:
        scaled = await api.patch(f"/deployments/{dep}", json={"replicas": 3})
        assert scaled.status_code == 202, scaled.text
    body = await measured_replicas(second, owner, dep, 3)
    assert await learnt_starts(second) == 3
    predicted = body["predicted_cold_start"]
    assert predicted["calibrated"] and predicted["label"] == "calibrated"
    assert predicted["total_ms"] == 2500.0
