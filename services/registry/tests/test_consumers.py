"""The registry's consumers on RabbitMQ: build results move a version Building -> Ready/Failed
once (duplicates and stale results ignored); the deployments projection drives the 409 rules."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import asyncpg
import httpx
import pytest
from kubeserve_common.events import CloudEvent
from kubeserve_common.events.catalog import (
    DeploymentDeleted,
    DeployRequested,
    EventPayload,
    VersionBuildFailed,
    VersionBuilt,
)
from kubeserve_common.messaging.rabbitmq import RabbitMQBus
from kubeserve_common.storage.s3 import S3ArtifactStore
from kubeserve_common.testing.waiting import wait_until
from registry_helpers import Registry, model_files

SIGNATURE = {"inputs": [{"name": "input", "datatype": "FP64", "shape": [-1, 4]}]}
PLAN = {"install": ["lightgbm==4.5.0"], "preinstalled": ["numpy"]}


@pytest.fixture
async def publisher(rabbit_bus_factory: Callable[..., RabbitMQBus]) -> RabbitMQBus:
    bus = rabbit_bus_factory("builder")
    await bus.connect()
    return bus


async def upload(client: httpx.AsyncClient, model_id: str, data: bytes = b"m") -> dict[str, Any]:
    resp = await client.post(f"/models/{model_id}/versions", files=model_files(data, "m.onnx"))
    assert resp.status_code == 201, resp.text
    return resp.json()  # type: ignore[no-any-return]


def built(version: dict[str, Any], owner: uuid.UUID, **kw: Any) -> VersionBuilt:
    return VersionBuilt(
        model_id=version["model_id"],
        version_id=version["id"],
        version_tag=version["version_tag"],
        owner_id=owner,
        signature=kw.pop("signature", SIGNATURE),
        dependency_plan=PLAN,
        predicted_cold_start_ms=kw.pop("cold", 850.0),
        **kw,
    )


def failed(
    version: dict[str, Any], owner: uuid.UUID, reason: str = "trial load failed"
) -> VersionBuildFailed:
    return VersionBuildFailed(
        model_id=version["model_id"],
        version_id=version["id"],
        version_tag=version["version_tag"],
        owner_id=owner,
        stage="trial_load",
        reason=reason,
    )


def event(payload: EventPayload, event_id: str | None = None) -> CloudEvent:
    return CloudEvent.create(payload, service="builder", event_id=event_id)


async def processed(pg: asyncpg.Connection, *events: CloudEvent) -> None:
    """Wait until the registry's inbox recorded every event (handled, or recognised as seen)."""

    async def done() -> bool:
        rows = await pg.fetch(
            "SELECT event_id FROM registry.inbox WHERE event_id = ANY($1::text[])",
            [e.id for e in events],
        )
        return len(rows) == len(events)

    await wait_until(done, message="the registry consumed the events")


async def test_build_results_apply_once_and_stale_ones_are_ignored(
    registry: Registry, publisher: RabbitMQBus, pg: asyncpg.Connection, user_a: uuid.UUID
) -> None:
    async with registry.client(user_a) as client:
        model = (await client.post("/models", json={"name": "builds", "framework": "onnx"})).json()
        v1 = await upload(client, model["id"])
        v2 = await upload(client, model["id"])
        v3 = await upload(client, model["id"])
        url = f"/models/{model['id']}/versions"

        ok = event(built(v1, user_a))
        await publisher.publish(ok)
        await processed(pg, ok)
        got = (await client.get(f"{url}/v1")).json()
        assert got["status"] == "Ready"
        assert got["signature"] == SIGNATURE and got["dependency_plan"] == PLAN
        assert got["predicted_cold_start_ms"] == 850.0 and got["built_at"] is not None
        assert got["failure_reason"] is None

        # A redelivery of the same event (same id, even with other content) changes nothing, and
        # a failure reported after success is stale.
        duplicate = event(built(v1, user_a, signature={"changed": True}, cold=1.0), ok.id)
        stale = event(failed(v1, user_a))
        await publisher.publish(duplicate)
        await publisher.publish(stale)
        await processed(pg, stale)
        again = (await client.get(f"{url}/v1")).json()
        assert again == got

        # Failed first, then a late success: stays Failed, with stage and reason.
        fail = event(failed(v2, user_a, "ImportError: no module named foo"))
        await publisher.publish(fail)
        await processed(pg, fail)
        late = event(built(v2, user_a))
        await publisher.publish(late)
        await processed(pg, late)
        got2 = (await client.get(f"{url}/v2")).json()
        assert got2["status"] == "Failed"
        assert got2["failure_stage"] == "trial_load"
        assert got2["failure_reason"] == "ImportError: no module named foo"
        assert got2["signature"] is None

        # A result for a deleted version, for an unknown version, or naming another owner.
        assert (await client.delete(f"{url}/v3")).status_code == 204
        orphans = [
            event(built(v3, user_a)),
            event(built({**v1, "id": str(uuid.uuid4())}, user_a)),
            event(built(v1, uuid.uuid4())),
        ]
        for e in orphans:
            await publisher.publish(e)
        await processed(pg, *orphans)
        assert (await client.get(f"{url}/v1")).json() == got
        assert (await client.get(f"{url}/v3")).status_code == 404
        listed = (await client.get(url)).json()
        assert [(v["version_tag"], v["status"]) for v in listed["items"]] == [
            ("v2", "Failed"),
            ("v1", "Ready"),
        ]
    inbox = await pg.fetchval("SELECT count(*) FROM registry.inbox WHERE event_id = $1", ok.id)
    assert inbox == 1


async def test_deployed_versions_and_models_cannot_be_deleted_until_undeployed(
    registry: Registry,
    publisher: RabbitMQBus,
    pg: asyncpg.Connection,
    s3: S3ArtifactStore,
    user_a: uuid.UUID,
) -> None:
    async with registry.client(user_a) as client:
        model = (await client.post("/models", json={"name": "live", "framework": "onnx"})).json()
        v1 = await upload(client, model["id"])
        v2 = await upload(client, model["id"])
        url = f"/models/{model['id']}"
        deployment = uuid.uuid4()
        requested = event(
            DeployRequested(
                deployment_id=deployment,
                owner_id=user_a,
                model_id=model["id"],
                version_id=v1["id"],
                revision=1,
                replicas=1,
                artifact_uri=v1["artifact"]["uri"],
            )
        )
        await publisher.publish(requested)
        await processed(pg, requested)

        resp = await client.delete(f"{url}/versions/v1")
        assert resp.status_code == 409 and resp.json()["error"]["code"] == "version_deployed"
        resp = await client.delete(url)
        assert resp.status_code == 409 and resp.json()["error"]["code"] == "model_deployed"
        # Another, undeployed version can go; its objects go with it.
        assert (await client.delete(f"{url}/versions/{v2['id']}")).status_code == 204
        prefix = f"models/{user_a}/{model['id']}/"
        assert [o.key for o in await s3.list_objects(prefix)] == [f"{prefix}v1/m.onnx"]

        deleted = event(DeploymentDeleted(deployment_id=deployment, owner_id=user_a))
        await publisher.publish(deleted)
        await processed(pg, deleted)
        # A late redelivery of the request must not resurrect the deployment.
        late = event(requested.payload(), event_id=str(uuid.uuid4()))
        await publisher.publish(late)
        await processed(pg, late)

        assert (await client.delete(url)).status_code == 204
        assert (await client.get(url)).status_code == 404
        assert (await client.get(f"{url}/versions/v1")).status_code == 404
        assert await s3.list_objects(prefix) == []
