"""Fixtures of the builder tests: a real builder on the run's PostgreSQL database, RabbitMQ under
the test's prefix and a fresh bucket on moto's S3 server; a local PEP 503 wheel index served over
HTTP on 127.0.0.1 (never the internet); an observer on the bus that publishes uploads and
collects build results."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from kubeserve_builder.bootstrap import BuilderContainer, bootstrap
from kubeserve_builder.settings import BuilderSettings
from kubeserve_common.events.catalog import VersionBuildFailed, VersionBuilt, VersionUploaded
from kubeserve_common.events.envelope import CloudEvent
from kubeserve_common.events.topology import Topology
from kubeserve_common.messaging.bus import Subscription
from kubeserve_common.storage.s3 import S3ArtifactStore
from kubeserve_common.testing.waiting import wait_until

sys.path.insert(0, str(Path(__file__).parent))

from builder_helpers import make_test_wheel, serve_index, stored_upload

RESULT_TYPES = (VersionBuilt.event_type(), VersionBuildFailed.event_type())


@pytest.fixture(scope="session")
def wheel_index(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """(index URL, wheel path, unpacked dir) of the test package `kubeserve-testpkg`."""
    root = tmp_path_factory.mktemp("wheel-index")
    wheel, unpacked = make_test_wheel(root)
    with serve_index(root, [wheel]) as url:
        yield url, wheel, unpacked


@pytest.fixture
def builder_settings(real_services_settings: dict[str, Any], wheel_index: Any) -> BuilderSettings:
    return BuilderSettings(
        **real_services_settings,  # type: ignore[arg-type]
        build_poll_interval=0.2,
        build_retry_delay=0.5,
        build_lease_seconds=10,
        wheel_index_url=wheel_index[0],
        trial_cpu_seconds=10,
        trial_timeout_seconds=60,
    )


@pytest.fixture
async def s3(s3_url: str, bucket: str) -> AsyncIterator[S3ArtifactStore]:
    """The test's own view of the bucket (its own client on the test's loop)."""
    store = S3ArtifactStore(
        bucket, endpoint_url=s3_url, access_key_id="testing", secret_access_key="testing"
    )
    await store.ensure_bucket()
    yield store
    await store.close()


@dataclass
class Harness:
    container: BuilderContainer
    settings: BuilderSettings
    store: S3ArtifactStore
    publish: Callable[[CloudEvent], Awaitable[None]]
    results: list[CloudEvent] = field(default_factory=list)

    async def upload(
        self,
        data: bytes,
        *,
        filename: str = "model.joblib",
        requirements: str = "",
        owner_id: uuid.UUID | None = None,
        sha256: str | None = None,
        publish: bool = True,
    ) -> tuple[VersionUploaded, CloudEvent]:
        """Store an artifact the way the registry does and announce it on the bus."""
        payload, event = await stored_upload(
            self.store, data, filename=filename, requirements=requirements,
            owner_id=owner_id, sha256=sha256,
        )  # fmt: skip
        if publish:
            await self.publish(event)
        return payload, event

    def results_for(self, version_id: uuid.UUID) -> list[CloudEvent]:
        return [e for e in self.results if e.data.get("version_id") == str(version_id)]

    async def result(self, version_id: uuid.UUID, wait: float = 240) -> CloudEvent:
        await wait_until(
            lambda: bool(self.results_for(version_id)),
            timeout=wait,
            interval=0.1,
            message=f"a build result for {version_id}",
        )
        return self.results_for(version_id)[0]

    async def report(self, event: CloudEvent) -> dict[str, Any]:
        import json

        uri = event.data["report_uri"]
        return json.loads(await self.store.read_bytes(self.store.key_for(uri)))


@pytest.fixture
async def start_builder(
    builder_settings: BuilderSettings,
    rabbit_bus_factory: Callable[..., Any],
    bus_prefix: str,
    s3: S3ArtifactStore,
) -> AsyncIterator[Callable[..., Awaitable[Harness]]]:
    """`await start_builder(**overrides)`: a running builder plus an observer on the bus."""
    containers: list[BuilderContainer] = []
    observer = rabbit_bus_factory("observer")
    await observer.connect()
    results: list[CloudEvent] = []

    async def collect(event: CloudEvent) -> None:
        results.append(event)

    await observer.subscribe(
        Subscription(Topology(bus_prefix).queue("observer", "results"), RESULT_TYPES), collect
    )

    async def start(**overrides: Any) -> Harness:
        probe = overrides.pop("sandbox_probe", None)
        settings = builder_settings.model_copy(update=overrides)
        bus = rabbit_bus_factory("builder")
        await bus.connect()
        container = bootstrap(settings, bus=bus, sandbox_probe=probe)
        await container.start()
        containers.append(container)
        return Harness(container, settings, s3, observer.publish, results)

    yield start
    for container in containers:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(container.stop(), 60)
