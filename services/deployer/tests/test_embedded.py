"""The embedded configuration (what `kubeserve up` uses): SQLite, the in-process bus, a local
artifact directory - deploy, predict, delete, with the same composition root."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from deployer_helpers import Deployer, predict, runtime_processes
from kubeserve_common.events.catalog import ModelCreated, VersionBuilt, VersionUploaded
from kubeserve_common.events.envelope import CloudEvent
from kubeserve_common.messaging.memory import InMemoryBus
from kubeserve_common.storage import create_artifact_store
from kubeserve_common.testing.waiting import wait_until
from kubeserve_deployer.bootstrap import bootstrap
from kubeserve_deployer.settings import DeployerSettings


@pytest.fixture
async def embedded(
    tmp_path: Path, runtime_dir: Path, kill_leftovers: Callable[[], None]
) -> AsyncIterator[tuple[Deployer, InMemoryBus, DeployerSettings]]:
    home = tmp_path / "home"
    settings = DeployerSettings(
        dev_mode=True,
        home=home,
        runtime_dir=runtime_dir,
        database_url=f"sqlite+aiosqlite:///{home / 'db' / 'deployer.db'}",
        broker_url="memory://",
        outbox_poll_interval=0.2,
        log_json=False,
    )
    bus = InMemoryBus("embedded")
    await bus.connect()
    container = bootstrap(settings, bus=bus)
    await container.start()
    stopped: set[int] = set()
    try:
        yield Deployer(container, settings, stopped), bus, settings
    finally:
        await container.stop()
        await bus.close()
        kill_leftovers()


async def test_embedded_deploy_predict_delete(
    embedded: tuple[Deployer, InMemoryBus, DeployerSettings], models: object, runtime_dir: Path
) -> None:
    deployer, bus, settings = embedded
    store = create_artifact_store(settings)
    owner, model_id, version_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    data = models.v1  # type: ignore[attr-defined]
    obj = await store.put_bytes(f"models/{owner}/{model_id}/v1/model.joblib", data)
    for payload in (
        ModelCreated(model_id=model_id, owner_id=owner, name="iris", framework="sklearn"),
        VersionUploaded(
            model_id=model_id,
            version_id=version_id,
            version_tag="v1",
            owner_id=owner,
            framework="sklearn",
            artifact_uri=obj.uri,
            filename="model.joblib",
            sha256=obj.sha256,
            size=obj.size,
        ),
        VersionBuilt(
            model_id=model_id,
            version_id=version_id,
            version_tag="v1",
            owner_id=owner,
            signature={},
            dependency_plan={},
            predicted_cold_start_ms=1.0,
        ),
    ):
        await bus.publish(CloudEvent.create(payload, service="registry"))
    await deployer.wait_version(owner, version_id)

    async with deployer.client(owner) as api:
        created = await api.post("/deployments", json={"version_id": str(version_id)})
        assert created.status_code == 202, created.text
        dep = created.json()["id"]
        await deployer.wait_status(owner, dep, "Running")
        [url] = await deployer.wait_route(dep, 1)
        assert await predict(url) == models.v1_expected  # type: ignore[attr-defined]

        assert (await api.delete(f"/deployments/{dep}")).status_code == 202

        async def gone() -> bool:
            return (await api.get(f"/deployments/{dep}")).status_code == 404

        await wait_until(gone, timeout=30, message="deleted")
        assert runtime_processes(runtime_dir) == set()
