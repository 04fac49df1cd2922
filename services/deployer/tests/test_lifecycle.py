"""The main path on real PostgreSQL, RabbitMQ, S3 and runtime processes: deploy -> Running ->
predict, scale to 2, move to v2, roll back to v1, delete."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from deployer_helpers import Deployer, Events, Seeder, pid_alive, predict, runtime_processes
from kubeserve_common.testing.waiting import wait_until


async def test_deploy_scale_update_rollback_delete(
    deployer: Deployer, seeder: Seeder, events: Events, models: object, runtime_dir: object
) -> None:
    owner = uuid.uuid4()
    model_id = await seeder.model(owner, name="Iris Classifier")
    v1 = await seeder.version(owner, model_id, "v1", seeder.models.v1)
    v2 = await seeder.version(owner, model_id, "v2", seeder.models.v2)
    await deployer.wait_version(owner, v1.version_id)
    await deployer.wait_version(owner, v2.version_id)

    async with deployer.client(owner) as api:
        # -- deploy ------------------------------------------------------------------------
        created = await api.post("/deployments", json={"version_id": str(v1.version_id)})
        assert created.status_code == 202, created.text
        body = created.json()
        dep = body["id"]
        assert body["status"] in ("Pending", "Deploying")
        assert body["name"] == "iris-classifier"
        assert body["replicas"] == {"desired": 1, "ready": 0}
        assert body["url"].endswith(f"/api/v1/predict/{dep}")

        running = await deployer.wait_status(owner, dep, "Running")
        assert running["replicas"] == {"desired": 1, "ready": 1}
        assert running["revision"] == 1 and running["version_tag"] == "v1"
        phases = running["cold_start"]
        assert {"fetch_ms", "spawn_ms", "first_health_ms", "total_ms"} <= set(phases)
        kinds = [e["kind"] for e in running["events"]]
        assert "deploy_requested" in kinds and "running" in kinds
        [endpoint] = await deployer.wait_route(dep, 1)
        assert await predict(endpoint) == seeder.models.v1_expected

        await wait_until(lambda: bool(events.of("ready", dep)), message="DeploymentReady")
        ready_event = events.of("ready", dep)[0]
        assert ready_event["endpoints"] == [endpoint]
        assert ready_event["ready_replicas"] == 1 and ready_event["cold_start"]

        listed = await api.get("/deployments")
        assert listed.status_code == 200
        assert [d["id"] for d in listed.json()["items"]] == [dep]
        assert listed.json()["total"] == 1

        # -- scale to 2: both replicas serve ---------------------------------------------------
        scaled = await api.patch(f"/deployments/{dep}", json={"replicas": 2})
        assert scaled.status_code == 202, scaled.text
        assert scaled.json()["replicas"]["desired"] == 2
        endpoints = await deployer.wait_route(dep, 2)
        assert endpoint in endpoints
        for url in endpoints:
            assert await predict(url) == seeder.models.v1_expected
        await wait_until(lambda: bool(events.of("scaled", dep)), message="DeploymentScaled")
        assert len(runtime_processes(runtime_dir)) == 2  # type: ignore[arg-type]

        # -- move to v2 (revision 2), then roll back to v1 (revision 3) ------------------------
        updated = await api.patch(f"/deployments/{dep}", json={"version_id": str(v2.version_id)})
        assert updated.status_code == 202, updated.text
        assert updated.json()["revision"] == 2

        async def serving(expected: list[object]) -> bool:
            route = (await deployer.route(dep)).json()
            if len(route["endpoints"]) != 2:
                return False
            try:
                return all([await predict(u) == expected for u in route["endpoints"]])
            except httpx.HTTPError:
                return False  # the route moved on while we asked (old replicas stopping)

        await wait_until(
            lambda: serving(seeder.models.v2_expected), timeout=60, message="v2 serving"
        )
        await deployer.wait_status(owner, dep, "Running")

        rolled = await api.post(f"/deployments/{dep}/rollback", json={})
        assert rolled.status_code == 202, rolled.text
        assert rolled.json()["revision"] == 3
        await wait_until(
            lambda: serving(seeder.models.v1_expected), timeout=60, message="v1 serving again"
        )
        final = await deployer.wait_status(owner, dep, "Running")
        assert final["version_tag"] == "v1"
        assert [r["revision"] for r in final["revisions"]] == [3, 2, 1]
        assert final["revisions"][0]["version_id"] == str(v1.version_id)
        # The old revision's replicas are gone: exactly the two of revision 3 run.
        await wait_until(
            lambda: len(runtime_processes(runtime_dir)) == 2,  # type: ignore[arg-type]
            message="old revision stopped",
        )
        pids = runtime_processes(runtime_dir)  # type: ignore[arg-type]

        # -- delete ------------------------------------------------------------------------
        deleted = await api.delete(f"/deployments/{dep}")
        assert deleted.status_code == 202, deleted.text
        assert deleted.json()["status"] == "Stopped"
        await wait_until(
            lambda: bool(events.of("deleted", dep)), timeout=30, message="DeploymentDeleted"
        )
        assert not any(pid_alive(p) for p in pids)
        assert runtime_processes(runtime_dir) == set()  # type: ignore[arg-type]
        gone = await api.get(f"/deployments/{dep}")
        assert gone.status_code == 404
        assert gone.json()["error"]["code"] == "not_found"
        assert (await deployer.route(dep)).status_code == 404
        assert (await api.get("/deployments")).json()["total"] == 0
        # Its replicas no longer count against the quota.
        again = await api.post(
            "/deployments", json={"version_id": str(v1.version_id), "replicas": 5}
        )
        assert again.status_code == 202, again.text
        await api.delete(f"/deployments/{again.json()['id']}")


async def test_api_and_worker_in_separate_processes(
    start_deployer: Callable[..., Any], seeder: Seeder, runtime_dir: Path
) -> None:
    """`serve --no-consume` beside `worker`: the API only writes and publishes; the worker's
    consumers and reconcile loop do the rest, woken by the events."""
    worker: Deployer = await start_deployer()
    api_only: Deployer = await start_deployer(consume=False)
    owner = uuid.uuid4()
    model_id = await seeder.model(owner)
    v1 = await seeder.version(owner, model_id)
    await worker.wait_version(owner, v1.version_id)
    async with api_only.client(owner) as api:
        created = await api.post(
            "/deployments", json={"version_id": str(v1.version_id), "replicas": 2}
        )
        assert created.status_code == 202, created.text
        dep = created.json()["id"]
        await api_only.wait_status(owner, dep, "Running")
        assert len(await api_only.wait_route(dep, 2)) == 2
        assert len(runtime_processes(runtime_dir)) == 2
        assert (await api.patch(f"/deployments/{dep}", json={"replicas": 1})).status_code == 202
        await wait_until(lambda: len(runtime_processes(runtime_dir)) == 1, message="scaled down")
        assert (await api.delete(f"/deployments/{dep}")).status_code == 202

        async def gone() -> bool:
            return (await api.get(f"/deployments/{dep}")).status_code == 404

        await wait_until(gone, timeout=30, message="deleted by the worker")
        assert runtime_processes(runtime_dir) == set()
    assert not api_only.container.backend.active  # the API process never drove replicas
