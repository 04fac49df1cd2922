"""`GET /usage`: replicas, CPU and memory reserved against the quota, per deployment, what a
new deployment or a scale-up needs; the quota's 409 and the usage agree. Another tenant's
deployments never count. (A backend that runs nothing: no processes are needed.)"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from deployer_helpers import Deployer, IdleBackend, Seeder


@pytest.fixture
async def idle(start_deployer: Callable[..., Any]) -> Deployer:
    return await start_deployer(backend=IdleBackend())


async def test_usage_against_the_quota_and_what_fits(idle: Deployer, seeder: Seeder) -> None:
    owner, other = uuid.uuid4(), uuid.uuid4()
    model_id = await seeder.model(owner)
    version = await seeder.version(owner, model_id)
    await idle.wait_version(owner, version.version_id)
    async with idle.client(owner) as api:
        empty = (await api.get("/usage")).json()
        assert empty["quota"] == {"replicas": 5, "cpu": 2.0, "memory_mib": 4096}
        assert empty["in_use"] == {"replicas": 0, "cpu": 0.0, "memory_mib": 0}
        assert empty["more_replicas_fit"] == 5 and empty["deployments"] == []
        assert empty["new_deployment"]["fits"] is True

        one = await api.post("/deployments", json={"version_id": str(version.version_id)})
        two = await api.post(
            "/deployments",
            json={
                "version_id": str(version.version_id),
                "autoscaling": {"min_replicas": 2, "max_replicas": 3},
            },
        )
        assert one.status_code == 202 and two.status_code == 202, two.text
        answer = await api.get("/usage")
        assert answer.status_code == 200, answer.text
        usage = answer.json()
        assert usage["in_use"] == {"replicas": 3, "cpu": 1.2, "memory_mib": 2304}
        assert usage["available"] == {"replicas": 2, "cpu": 0.8, "memory_mib": 1792}
        assert usage["more_replicas_fit"] == 2
        assert usage["new_deployment"]["needs"] == {"replicas": 1, "cpu": 0.4, "memory_mib": 768}
        assert "2 more fit" in usage["scale_up"]["message"]
        by_id = {d["id"]: d for d in usage["deployments"]}
        assert by_id[one.json()["id"]]["reserved"]["replicas"] == 1
        assert by_id[one.json()["id"]]["can_add_replicas"] == 2
        auto = by_id[two.json()["id"]]
        assert auto["replicas"]["desired"] == 2 and auto["autoscaling_max_replicas"] == 3
        assert auto["can_add_replicas"] == 1  # its own maximum bounds it before the quota

        # Fill the quota: the 409 names what is in use, and the usage says the same.
        full = await api.patch(f"/deployments/{one.json()['id']}", json={"replicas": 3})
        assert full.status_code == 202, full.text
        refused = await api.post("/deployments", json={"version_id": str(version.version_id)})
        assert refused.status_code == 409, refused.text
        assert "5 replicas (2 CPU, 3840 MiB) are in use" in refused.json()["error"]["message"]
        usage = (await api.get("/usage")).json()
        assert usage["in_use"]["replicas"] == 5 and usage["more_replicas_fit"] == 0
        assert usage["new_deployment"]["fits"] is False
        assert "5 replicas (2 CPU, 3840 MiB) are in use" in usage["new_deployment"]["message"]

        # Deleted deployments free their share.
        gone = await api.delete(f"/deployments/{one.json()['id']}")
        assert gone.status_code in (202, 204), gone.text
        assert (await api.get("/usage")).json()["in_use"]["replicas"] == 2

    async with idle.client(other) as api:
        theirs = (await api.get("/usage")).json()
        assert theirs["in_use"]["replicas"] == 0 and theirs["deployments"] == []

    async with idle.client() as anonymous:
        assert (await anonymous.get("/usage")).status_code == 401
