"""The autoscaler loop on real PostgreSQL, RabbitMQ, S3 and runtime processes: in-flight figures
reported like a gateway does raise the replicas (each new one ready and serving), the decision
is in the activity and on the bus, replicas come back down when the load stops, and a
`min_replicas: 0` deployment goes to zero when idle and wakes on the next report."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

from deployer_helpers import Deployer, Events, Seeder, predict
from kubeserve_common.testing.waiting import wait_until

FAST = {  # short windows: the test asserts behaviour, the defaults are for users
    "autoscale_interval": 0.2,
    "autoscale_stable_window": 2.0,
    "autoscale_panic_window": 1.0,
    "autoscale_scale_down_delay": 1.0,
}


async def _report(deployer: Deployer, dep: str, in_flight: float) -> None:
    async with deployer.client() as c:
        response = await c.post(
            "/internal/load",
            json={"gateway": "gw-test", "in_flight": {dep: in_flight}},
            headers=deployer.internal_headers(),
        )
    assert response.status_code == 204, response.text


async def _replicas(deployer: Deployer, owner: uuid.UUID, dep: str) -> dict[str, Any]:
    async with deployer.client(owner) as api:
        body: dict[str, Any] = (await api.get(f"/deployments/{dep}")).json()
    return body


async def test_load_scales_up_and_back_down(
    start_deployer: Callable[..., Any], seeder: Seeder, events: Events
) -> None:
    deployer: Deployer = await start_deployer(**FAST)
    owner = uuid.uuid4()
    model_id = await seeder.model(owner)
    v1 = await seeder.version(owner, model_id)
    await deployer.wait_version(owner, v1.version_id)
    async with deployer.client(owner) as api:
        created = await api.post(
            "/deployments",
            json={
                "version_id": str(v1.version_id),
                "autoscaling": {"min_replicas": 1, "max_replicas": 3, "target_concurrency": 2},
            },
        )
        assert created.status_code == 202, created.text
        dep = created.json()["id"]
    await deployer.wait_status(owner, dep, "Running")

    async def loaded() -> bool:
        await _report(deployer, dep, 6.0)  # 6 in flight, target 2: 3 replicas
        return (await _replicas(deployer, owner, dep))["replicas"] == {"desired": 3, "ready": 3}

    await wait_until(loaded, timeout=60, interval=0.2, message="3 ready replicas under load")
    for endpoint in await deployer.wait_route(dep, 3):
        assert await predict(endpoint) == seeder.models.v1_expected
    body = await _replicas(deployer, owner, dep)
    lines = [e["message"] for e in body["events"] if e["kind"] == "autoscaled"]
    # e.g. "scaled 1 -> 2: 3.0 in flight, target 2 (panic)" then "scaled 2 -> 3: 6.0 ..."
    assert lines[0].startswith("scaled 1 -> "), lines
    assert re.fullmatch(r"scaled [12] -> 3: [0-9.]+ in flight, target 2( \(panic\))?", lines[-1])
    await wait_until(lambda: bool(events.of("autoscaled", dep)), message="DeploymentAutoscaled")
    first = events.of("autoscaled", dep)[0]
    assert first["previous_replicas"] == 1 and first["replicas"] in (2, 3)
    assert first["target_concurrency"] == 2

    async def idle() -> bool:
        await _report(deployer, dep, 0.0)
        return (await _replicas(deployer, owner, dep))["replicas"] == {"desired": 1, "ready": 1}

    await wait_until(idle, timeout=60, interval=0.2, message="back to 1 replica when idle")


async def test_scale_to_zero_and_wake(start_deployer: Callable[..., Any], seeder: Seeder) -> None:
    deployer: Deployer = await start_deployer(**FAST)
    owner = uuid.uuid4()
    model_id = await seeder.model(owner)
    v1 = await seeder.version(owner, model_id)
    await deployer.wait_version(owner, v1.version_id)
    async with deployer.client(owner) as api:
        created = await api.post(
            "/deployments",
            json={
                "version_id": str(v1.version_id),
                "autoscaling": {
                    "min_replicas": 0,
                    "max_replicas": 2,
                    "target_concurrency": 1,
                    "scale_to_zero_after_s": 1,
                },
            },
        )
        assert created.status_code == 202, created.text
        dep = created.json()["id"]
    await deployer.wait_status(owner, dep, "Running")

    async def at_zero() -> bool:
        body = await _replicas(deployer, owner, dep)
        return body["replicas"] == {"desired": 0, "ready": 0}

    await wait_until(at_zero, timeout=60, interval=0.2, message="scaled to zero when idle")
    route = (await deployer.route(dep)).json()
    assert route["endpoints"] == [] and route["scaled_to_zero"] is True

    await _report(deployer, dep, 1.0)  # a request is held at a gateway
    [endpoint] = await deployer.wait_route(dep, 1, timeout=60)
    assert await predict(endpoint) == seeder.models.v1_expected
    assert (await deployer.route(dep)).json()["scaled_to_zero"] is False
