"""Issue 15 item 7, the deployer's side: `UserDeleted` stops every deployment of that tenant as
a delete would (replicas gone, predictions stop answering, `DeploymentDeleted` once each), leaves
other tenants alone, and a redelivered or repeated event has no second effect. On real
PostgreSQL, RabbitMQ, S3 and runtime processes (the local backend); on the kubernetes backend
(its Kubernetes and Helm ports faked) the tenant's namespace goes after the grace period."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from deployer_helpers import Deployer, Events, Seeder, pid_alive, predict, runtime_processes
from k8s_fakes import FakeCluster
from kubeserve_common.events.catalog import UserDeleted
from kubeserve_common.events.envelope import CloudEvent
from kubeserve_common.storage.s3 import S3ArtifactStore
from kubeserve_common.testing.waiting import wait_until
from test_kubernetes_lifecycle import make_backend


async def _running(deployer: Deployer, seeder: Seeder, owner: uuid.UUID) -> tuple[str, str]:
    """A Running deployment of `owner`: (its id, its replica endpoint)."""
    model_id = await seeder.model(owner)
    version = await seeder.version(owner, model_id, "v1", seeder.models.v1)
    await deployer.wait_version(owner, version.version_id)
    async with deployer.client(owner) as api:
        created = await api.post("/deployments", json={"version_id": str(version.version_id)})
        assert created.status_code == 202, created.text
    dep = str(created.json()["id"])
    await deployer.wait_status(owner, dep, "Running")
    [endpoint] = await deployer.wait_route(dep, 1)
    return dep, endpoint


async def _answers(endpoint: str) -> bool:
    try:
        await predict(endpoint)
    except (httpx.HTTPError, OSError):
        return False
    return True


async def test_a_deleted_users_deployments_stop_once_and_others_keep_serving(
    deployer: Deployer, seeder: Seeder, events: Events, runtime_dir: object
) -> None:
    victim, bystander = uuid.uuid4(), uuid.uuid4()
    gone = [await _running(deployer, seeder, victim) for _ in range(2)]
    kept, kept_endpoint = await _running(deployer, seeder, bystander)
    pids_before = runtime_processes(runtime_dir)  # type: ignore[arg-type]
    assert len(pids_before) == 3

    event = CloudEvent.create(
        UserDeleted(user_id=victim),
        service="auth",
        subject=f"users/{victim}",
        tenant_id=str(victim),
    )
    await seeder.bus.publish(event)
    await seeder.bus.publish(event)  # redelivered: the inbox drops it
    # Another UserDeleted for the same user (another id): the state check drops it.
    await seeder.bus.publish(CloudEvent.create(UserDeleted(user_id=victim), service="auth"))

    for dep, endpoint in gone:
        await wait_until(
            lambda d=dep: bool(events.of("deleted", d)), timeout=60, message="DeploymentDeleted"
        )
        assert not await _answers(endpoint)
        assert (await deployer.route(dep)).status_code == 404
    async with deployer.client(victim) as api:
        listed = await api.get("/deployments")
        assert listed.json()["total"] == 0
        for dep, _ in gone:
            assert (await api.get(f"/deployments/{dep}")).status_code == 404

    # The bystander is untouched.
    assert await predict(kept_endpoint) == seeder.models.v1_expected
    await deployer.wait_status(bystander, kept, "Running")
    remaining = runtime_processes(runtime_dir)  # type: ignore[arg-type]
    assert len(remaining) == 1 and all(pid_alive(p) for p in remaining)

    await asyncio.sleep(1.5)  # room for a second effect, had a duplicate caused one
    for dep, _ in gone:
        assert len(events.of("deleted", dep)) == 1
        assert len(events.of("undeploy_requested", dep)) == 1
    assert events.of("deleted", kept) == [] and events.of("undeploy_requested", kept) == []


async def test_on_kubernetes_the_namespace_goes_after_the_grace_period_once(
    start_deployer: Callable[..., Any], seeder: Seeder, events: Events, s3: S3ArtifactStore
) -> None:
    cluster = FakeCluster()
    backend = make_backend(cluster, s3)
    grace = 2.0
    deployer = await start_deployer(
        backend=backend,
        runtime_backend="kubernetes",
        reconcile_interval=0.2,
        tenant_retire_grace_seconds=grace,
        tenant_retire_check_seconds=0.3,
    )
    victim, bystander = uuid.uuid4(), uuid.uuid4()
    deployments = {}
    for owner in (victim, bystander):
        model_id = await seeder.model(owner)
        version = await seeder.version(owner, model_id, "v1")
        await deployer.wait_version(owner, version.version_id)
        async with deployer.client(owner) as api:
            created = await api.post("/deployments", json={"version_id": str(version.version_id)})
        deployments[owner] = created.json()["id"]
        await deployer.wait_status(owner, deployments[owner], "Running")
    assert {f"user-{victim}", f"user-{bystander}"} <= set(cluster.namespaces())

    event = CloudEvent.create(UserDeleted(user_id=victim), service="auth")
    await seeder.bus.publish(event)
    await seeder.bus.publish(event)  # redelivered: one retirement all the same
    dep = deployments[victim]
    await wait_until(lambda: bool(events.of("deleted", dep)), message="DeploymentDeleted")
    await wait_until(
        lambda: f"user-{victim}" not in cluster.namespaces(), timeout=60, message="retired"
    )
    # Never before the grace period (a lower bound, whatever the machine's speed).
    assert datetime.now(UTC) >= event.time + timedelta(seconds=grace)
    assert cluster.deleted_namespaces.count(f"user-{victim}") == 1
    assert f"user-{bystander}" in cluster.namespaces()
    await deployer.wait_status(bystander, deployments[bystander], "Running")
    await asyncio.sleep(1.0)  # a duplicate retirement, had there been one, shows up here
    assert cluster.deleted_namespaces.count(f"user-{victim}") == 1
    assert len(events.of("deleted", dep)) == 1
