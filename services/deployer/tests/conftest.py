"""Fixtures of the deployer tests: a real deployer (its app over ASGI, its container started on
the test's loop) on the run's PostgreSQL database, RabbitMQ under the test's prefix, a fresh
bucket on moto's S3 server and real runtime processes - every one of which is killed at the end
of the test, whatever happened."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from kubeserve_common.events.topology import Topology
from kubeserve_common.storage.s3 import S3ArtifactStore
from kubeserve_common.testing.plugin import delete_topology

# Test modules import their helpers (`deployer_helpers`) from this folder.
sys.path.insert(0, str(Path(__file__).parent))

from deployer_helpers import (
    Deployer,
    Events,
    Models,
    Seeder,
    runtime_processes,
    train_models,
)
from kubeserve_deployer.bootstrap import DeployerContainer, bootstrap
from kubeserve_deployer.settings import DeployerSettings


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory) -> Models:
    return train_models(tmp_path_factory.mktemp("models"))


@pytest.fixture
def runtime_dir(tmp_path: Path) -> Path:
    return tmp_path / "rt"


@pytest.fixture
def deployer_settings(
    real_services_settings: dict[str, Any], tmp_path: Path, runtime_dir: Path
) -> DeployerSettings:
    return DeployerSettings(
        **real_services_settings,  # type: ignore[arg-type]
        home=tmp_path / "home",
        runtime_dir=runtime_dir,
        health_interval=0.3,
        restart_backoff_base=0.2,
        stop_grace=3.0,
    )


@pytest.fixture
def kill_leftovers(runtime_dir: Path) -> Callable[[], None]:
    def kill() -> None:
        for pid in runtime_processes(runtime_dir, include_pool=True):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)

    return kill


@pytest.fixture
async def start_deployer(
    amqp_url: str,
    bus_prefix: str,
    deployer_settings: DeployerSettings,
    kill_leftovers: Callable[[], None],
) -> AsyncIterator[Callable[..., Any]]:
    """`await start_deployer(**overrides)` starts a deployer container (consumers, reconcile
    loop, warm pool) and returns a `Deployer` handle. Every container is stopped and every
    runtime process of the test killed afterwards."""
    containers: list[DeployerContainer] = []
    stopped: set[int] = set()

    async def start(*, backend: Any = None, consume: bool = True, **overrides: Any) -> Deployer:
        # Validated again (not model_copy): a flat override (`use_warm_pool=False`) lands in
        # its nested group (`settings.local`), as it does from the environment.
        settings = DeployerSettings.model_validate({**deployer_settings.model_dump(), **overrides})
        container = bootstrap(settings, backend=backend)
        containers.append(container)
        await container.start(consume=consume)
        return Deployer(container, settings, stopped)

    try:
        yield start
    finally:
        for container in containers:
            if id(container) not in stopped:
                with contextlib.suppress(Exception):
                    await container.stop()
        kill_leftovers()
        queues = {q for c in containers for q in getattr(c.bus, "declared_queues", set())}
        await delete_topology(amqp_url, Topology(bus_prefix), queues)


@pytest.fixture
async def deployer(start_deployer: Callable[..., Any]) -> Deployer:
    return await start_deployer()


@pytest.fixture
async def s3(s3_url: str, bucket: str) -> AsyncIterator[S3ArtifactStore]:
    store = S3ArtifactStore(
        bucket, endpoint_url=s3_url, access_key_id="testing", secret_access_key="testing"
    )
    await store.ensure_bucket()
    yield store
    await store.close()


@pytest.fixture
async def seeder(
    rabbit_bus_factory: Callable[..., Any], s3: S3ArtifactStore, models: Models
) -> AsyncIterator[Seeder]:
    """Publishes what the registry and builder would: `ModelCreated`, `VersionUploaded`,
    `VersionBuilt` (artifacts really stored in the bucket)."""
    bus = rabbit_bus_factory("registry")
    await bus.connect()
    yield Seeder(bus, s3, models)


@pytest.fixture
async def events(rabbit_bus_factory: Callable[..., Any], bus_prefix: str) -> Events:
    """Every deployment event the deployer publishes, as an outside subscriber sees it."""
    bus = rabbit_bus_factory("observer")
    await bus.connect()
    seen = Events()
    await seen.subscribe(bus, Topology(bus_prefix))
    return seen
