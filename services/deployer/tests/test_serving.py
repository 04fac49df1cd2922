"""`GET /internal/serving` (the gateway's Prometheus discovery): every live deployment with
ready replicas, labelled by owner, name and serving version; services only."""

from __future__ import annotations

import uuid

from deployer_helpers import Deployer, Seeder


async def test_serving_lists_ready_replicas_with_their_labels(
    deployer: Deployer, seeder: Seeder
) -> None:
    owner = uuid.uuid4()
    model_id = await seeder.model(owner, name="Iris Classifier")
    v1 = await seeder.version(owner, model_id, "v1", seeder.models.v1)
    await deployer.wait_version(owner, v1.version_id)
    async with deployer.client(owner) as api:
        created = await api.post("/deployments", json={"version_id": str(v1.version_id)})
        dep = created.json()["id"]
    endpoints = await deployer.wait_route(dep, 1)

    async with deployer.client() as plain:
        refused = await plain.get("/internal/serving")
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == "unauthorized"
        listed = await plain.get("/internal/serving", headers=deployer.internal_headers())
    assert listed.status_code == 200, listed.text
    (mine,) = [s for s in listed.json() if s["deployment_id"] == dep]
    assert mine["owner_id"] == str(owner)
    assert mine["name"] == "iris-classifier"
    assert mine["version"] == "v1" and mine["revision"] == 1
    assert mine["endpoints"] == endpoints
