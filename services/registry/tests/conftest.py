"""Fixtures of the registry tests: a real registry (uvicorn on 127.0.0.1) on the run's
PostgreSQL database, RabbitMQ under the test's prefix and a fresh bucket on moto's S3 server."""

from __future__ import annotations

import contextlib
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from kubeserve_common.events.topology import Topology
from kubeserve_common.storage.s3 import S3ArtifactStore
from kubeserve_common.testing.plugin import delete_topology
from kubeserve_common.testing.servers import serve_app
from kubeserve_registry.bootstrap import RegistryContainer, bootstrap
from kubeserve_registry.main import create_app
from kubeserve_registry.settings import RegistrySettings

# Test modules import their helpers (`registry_helpers`) from this folder.
sys.path.insert(0, str(Path(__file__).parent))

from registry_helpers import Registry


@pytest.fixture
def registry_settings(real_services_settings: dict[str, Any]) -> RegistrySettings:
    return RegistrySettings(**real_services_settings)  # type: ignore[arg-type]


@pytest.fixture
async def start_registry(
    amqp_url: str, bus_prefix: str, registry_settings: RegistrySettings
) -> AsyncIterator[Callable[..., Registry]]:
    """`start_registry(**overrides)` serves a registry with the settings overridden."""
    stack = contextlib.ExitStack()
    containers: list[RegistryContainer] = []

    def start(**overrides: Any) -> Registry:
        settings = registry_settings.model_copy(update=overrides)
        container = bootstrap(settings)
        containers.append(container)
        url = stack.enter_context(serve_app(create_app(container)))
        return Registry(url, container, settings)

    yield start
    stack.close()
    queues = {q for c in containers for q in getattr(c.bus, "declared_queues", set())}
    await delete_topology(amqp_url, Topology(bus_prefix), queues)


@pytest.fixture
async def registry(start_registry: Callable[..., Registry]) -> Registry:
    return start_registry()


@pytest.fixture
async def s3(s3_url: str, bucket: str) -> AsyncIterator[S3ArtifactStore]:
    """The test's own view of the registry's bucket (its own client on the test's loop)."""
    store = S3ArtifactStore(
        bucket, endpoint_url=s3_url, access_key_id="testing", secret_access_key="testing"
    )
    await store.ensure_bucket()
    yield store
    await store.close()


@pytest.fixture
async def pg(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://"))
    yield conn
    await conn.close()


@pytest.fixture
def user_a() -> uuid.UUID:
    return uuid.uuid4()


@pytest.fixture
def user_b() -> uuid.UUID:
    return uuid.uuid4()
