"""The deployer's consumers are idempotent and order-insensitive: events of a version arriving
out of order, results that must not downgrade a final status, events re-delivered or about an
old revision, events trying to re-home a version to another tenant. (No processes needed.)"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from deployer_helpers import Deployer, IdleBackend, Seeder, Version
from kubeserve_common.events.catalog import (
    DeployRequested,
    UndeployRequested,
    VersionBuildFailed,
    VersionUploaded,
)
from kubeserve_common.events.envelope import CloudEvent
from kubeserve_common.testing.waiting import wait_until


@pytest.fixture
async def idle(start_deployer: Callable[..., Any]) -> Deployer:
    return await start_deployer(backend=IdleBackend())


async def _handled(deployer: Deployer, consumer: str, *events: CloudEvent) -> None:
    """Until the consumer's inbox holds every one of `events` (each was processed)."""
    from kubeserve_common.db.base import inbox_table
    from sqlalchemy import func, select

    ids = {e.id for e in events}

    async def done() -> bool:
        async with deployer.container.uow() as uow:
            stmt = select(func.count()).where(
                inbox_table.c.consumer == consumer, inbox_table.c.event_id.in_(ids)
            )
            return int((await uow.session.execute(stmt)).scalar_one()) == len(ids)

    await wait_until(done, timeout=30, message=f"{consumer} handled {len(ids)} events")


async def _status(deployer: Deployer, owner: uuid.UUID, version_id: uuid.UUID) -> str | None:
    from kubeserve_deployer.repositories.versions import VersionRepository

    async with deployer.container.uow() as uow:
        found = await VersionRepository(uow.session).get_owned(owner, version_id)
        return None if found is None else found.status


async def test_built_before_uploaded_then_deployable(idle: Deployer, seeder: Seeder) -> None:
    owner = uuid.uuid4()
    model_id = await seeder.model(owner)
    version = Version(owner, model_id, uuid.uuid4(), "v1")
    await seeder.built(version)  # the builder's result overtakes the registry's upload event
    await wait_until(
        lambda: _status(idle, owner, version.version_id), message="projected from VersionBuilt"
    )
    async with idle.client(owner) as api:
        early = await api.post("/deployments", json={"version_id": str(version.version_id)})
        assert early.status_code == 409, early.text
        assert "not known to the deployer yet" in early.json()["error"]["message"]
        assert early.headers.get("retry-after") == "1"

    obj = await seeder.s3.put_bytes(f"models/{owner}/{model_id}/v1/model.joblib", b"x" * 10)
    await seeder.bus.publish(
        CloudEvent.create(
            VersionUploaded(
                model_id=model_id,
                version_id=version.version_id,
                version_tag="v1",
                owner_id=owner,
                framework="sklearn",
                artifact_uri=obj.uri,
                filename="model.joblib",
                sha256=obj.sha256,
                size=obj.size,
            ),
            service="registry",
        )
    )
    await idle.wait_version(owner, version.version_id)
    async with idle.client(owner) as api:
        ok = await api.post("/deployments", json={"version_id": str(version.version_id)})
        assert ok.status_code == 202, ok.text


async def test_final_version_status_is_never_downgraded(idle: Deployer, seeder: Seeder) -> None:
    owner = uuid.uuid4()
    model_id = await seeder.model(owner)
    version = await seeder.version(owner, model_id)
    await idle.wait_version(owner, version.version_id)
    late_failure = CloudEvent.create(
        VersionBuildFailed(
            model_id=model_id,
            version_id=version.version_id,
            version_tag="v1",
            owner_id=owner,
            stage="late",
            reason="a stale result",
        ),
        service="builder",
    )
    await seeder.bus.publish(late_failure)
    await seeder.bus.publish(late_failure)  # and re-delivered
    await _handled(idle, "versions", late_failure)
    assert await _status(idle, owner, version.version_id) == "Ready"


async def test_an_event_cannot_rehome_a_version(idle: Deployer, seeder: Seeder) -> None:
    owner, intruder = uuid.uuid4(), uuid.uuid4()
    model_id = await seeder.model(owner)
    version = await seeder.version(owner, model_id)
    await idle.wait_version(owner, version.version_id)
    await seeder.built(Version(intruder, model_id, version.version_id, "v1"))
    queue = idle.container.topology.queue("deployer", "versions")
    dead: list[Any] = []

    async def dead_lettered() -> bool:
        dead[:] = await idle.container.bus.dead_letters(queue)
        return bool(dead)

    await wait_until(dead_lettered, timeout=30, message="dead-lettered")
    assert await _status(idle, owner, version.version_id) == "Ready"
    async with idle.client(intruder) as api:
        response = await api.post("/deployments", json={"version_id": str(version.version_id)})
        assert response.status_code == 404
    assert dead, "the mismatching event is dead-lettered, not retried forever"


async def test_replayed_and_stale_deployment_events_change_nothing(
    idle: Deployer, seeder: Seeder
) -> None:
    owner = uuid.uuid4()
    model_id = await seeder.model(owner)
    v1 = await seeder.version(owner, model_id)
    await idle.wait_version(owner, v1.version_id)
    async with idle.client(owner) as api:
        dep = (await api.post("/deployments", json={"version_id": str(v1.version_id)})).json()
        await idle.wait_status(owner, dep["id"], "Deploying")
        stale = DeployRequested(
            deployment_id=uuid.UUID(dep["id"]),
            owner_id=owner,
            model_id=model_id,
            version_id=v1.version_id,
            revision=1,
            replicas=1,
            artifact_uri="s3://elsewhere/x",
        )
        # Someone else's undeploy for this deployment id is ignored too.
        foreign = UndeployRequested(deployment_id=uuid.UUID(dep["id"]), owner_id=uuid.uuid4())
        replayed = [CloudEvent.create(p, service="deployer") for p in (stale, foreign)]
        for event in (*replayed, replayed[0]):
            await seeder.bus.publish(event)
        await _handled(idle, "deployments", *replayed)
        body = (await api.get(f"/deployments/{dep['id']}")).json()
        assert body["status"] == "Deploying" and body["revision"] == 1
        assert [e["kind"] for e in body["events"]].count("deploying") == 1


async def test_a_late_deploy_requested_never_overwrites_a_running_status(
    idle: Deployer, seeder: Seeder
) -> None:
    """The reconcile loop may mark a revision Running before the worker consumes its
    DeployRequested (a fast backend). The worker locks the row, so it sees Running and leaves it;
    reading it unlocked, it would write Deploying over it and the loop would never correct it."""
    import asyncio

    from kubeserve_deployer.domain.deployments import DeploymentStatus
    from kubeserve_deployer.repositories.deployments import DeploymentRepository
    from kubeserve_deployer.services.intents import IntentService
    from sqlalchemy import text

    owner = uuid.uuid4()
    model_id = await seeder.model(owner)
    version = await seeder.version(owner, model_id)
    await idle.wait_version(owner, version.version_id)
    async with idle.client(owner) as api:
        created = (
            await api.post("/deployments", json={"version_id": str(version.version_id)})
        ).json()
    d = uuid.UUID(created["id"])
    await idle.wait_status(owner, d, "Deploying")  # the real event was handled

    async def set_status(status: str) -> None:
        async with idle.container.uow() as uow:
            row = await DeploymentRepository(uow.session).get_live(d, for_update=True)
            assert row is not None
            row.status = status
            await uow.commit()

    await set_status(DeploymentStatus.PENDING.value)  # as if the event were still in flight
    event = DeployRequested(
        deployment_id=d,
        owner_id=owner,
        model_id=model_id,
        version_id=version.version_id,
        revision=1,
        replicas=1,
        artifact_uri="s3://unused/x",
    )

    async def worker() -> None:
        async with idle.container.uow() as uow:
            await IntentService().deploy_requested(uow, event)
            await uow.commit()

    async def lock_waiters() -> int:
        async with idle.container.uow() as uow:
            result = await uow.session.execute(
                text("SELECT count(*) FROM pg_locks WHERE NOT granted")
            )
            return int(result.scalar_one())

    async with idle.container.uow() as loop_uow:  # the reconcile loop's transaction
        row = await DeploymentRepository(loop_uow.session).get_live(d, for_update=True)
        assert row is not None
        row.status = DeploymentStatus.RUNNING.value
        task = asyncio.create_task(worker())
        # Until the worker is blocked on our row lock (it read before our commit, in any design).
        await wait_until(lambda: _positive(lock_waiters()), message="worker waiting on the row")
        await loop_uow.commit()
    await task
    async with idle.client(owner) as api:
        assert (await api.get(f"/deployments/{d}")).json()["status"] == "Running"


async def _positive(count: Any) -> bool:
    return bool(await count > 0)
