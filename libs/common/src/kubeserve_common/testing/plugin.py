"""pytest plugin: real-service fixtures shared by every test suite in the workspace.

Where a service comes from, in order: an URL from the environment
(`KUBESERVE_TEST_POSTGRES_URL`, `KUBESERVE_TEST_AMQP_URL`, `KUBESERVE_TEST_S3_URL`); the
machine's running service on its standard port; a testcontainers container when a Docker engine
answers. A service that cannot be had is a test error, never a skip.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import aio_pika
import asyncpg
import pytest

from kubeserve_common.events.topology import Topology
from kubeserve_common.messaging.rabbitmq import RabbitMQBus
from kubeserve_common.testing import TEST_INTERNAL_SECRET
from kubeserve_common.testing.proxy import TcpProxy
from kubeserve_common.testing.servers import free_port

PG_CANDIDATES = (
    "postgresql://postgres@127.0.0.1:5432/postgres",
    "postgresql://root@127.0.0.1:5432/postgres",
)
AMQP_DEFAULT = "amqp://guest:guest@127.0.0.1:5672/"


def _docker_available() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        probe = subprocess.run(["docker", "info"], capture_output=True, timeout=10)  # noqa: S607
        return probe.returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _missing(what: str, hint: str) -> None:
    pytest.fail(
        f"{what} is not reachable and no Docker engine can start one. {hint}", pytrace=False
    )


# -- PostgreSQL ------------------------------------------------------------------------------


async def _answers(
    connect: Callable[[], Awaitable[Any]], refused: type[Exception] | tuple[type[Exception], ...]
) -> bool:
    """Whether a server takes a connection (closed again at once); `refused`: the errors
    that mean it does not."""
    try:
        conn = await connect()
    except refused:
        return False
    await conn.close()
    return True


async def _pg_ok(dsn: str) -> bool:
    refused = (OSError, asyncpg.PostgresError, TimeoutError)
    return await _answers(lambda: asyncpg.connect(dsn, timeout=5), refused)


@pytest.fixture(scope="session")
async def postgres_admin_dsn() -> AsyncIterator[str]:
    """A libpq DSN to a maintenance database on a server where we may create databases."""
    env = os.environ.get("KUBESERVE_TEST_POSTGRES_URL")
    for dsn in (env,) if env else PG_CANDIDATES:
        if dsn and await _pg_ok(dsn.replace("postgresql+asyncpg://", "postgresql://")):
            yield dsn.replace("postgresql+asyncpg://", "postgresql://")
            return
    if _docker_available():
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:16-alpine", driver=None) as container:
            yield container.get_connection_url()
        return
    _missing(
        "PostgreSQL",
        "Start it (see ENV.md / .ci/run) or set KUBESERVE_TEST_POSTGRES_URL.",
    )


@pytest.fixture(scope="session")
async def postgres_database(postgres_admin_dsn: str) -> AsyncIterator[str]:
    """A fresh database for this test run (SQLAlchemy URL); dropped at the end."""
    name = f"ks_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(postgres_admin_dsn, timeout=10)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    parts = urlsplit(postgres_admin_dsn)
    url = f"postgresql+asyncpg://{parts.netloc}/{name}"
    yield url
    admin = await asyncpg.connect(postgres_admin_dsn, timeout=10)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
async def database_url(postgres_database: str) -> AsyncIterator[str]:
    """The run's database with every service table emptied before the test (clean state);
    migrations stay applied."""
    conn = await asyncpg.connect(
        postgres_database.replace("postgresql+asyncpg://", "postgresql://")
    )
    try:
        tables = await conn.fetch(
            "SELECT schemaname, tablename FROM pg_tables WHERE schemaname NOT IN "
            "('pg_catalog', 'information_schema') AND tablename <> 'alembic_version'"
        )
        if tables:
            names = ", ".join(f'"{t["schemaname"]}"."{t["tablename"]}"' for t in tables)
            await conn.execute(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
    finally:
        await conn.close()
    yield postgres_database


def pg_url_via(url: str, proxy: TcpProxy) -> str:
    """`url` rewritten to go through `proxy`."""
    parts = urlsplit(url)
    userinfo = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
    return parts._replace(netloc=f"{userinfo}127.0.0.1:{proxy.port}").geturl()


# -- RabbitMQ --------------------------------------------------------------------------------


async def _amqp_ok(url: str) -> bool:
    return await _answers(lambda: aio_pika.connect(url, timeout=5), Exception)


@pytest.fixture(scope="session")
async def amqp_url() -> AsyncIterator[str]:
    env = os.environ.get("KUBESERVE_TEST_AMQP_URL")
    url = env or AMQP_DEFAULT
    if await _amqp_ok(url):
        yield url
        return
    if not env and _docker_available():
        from testcontainers.rabbitmq import RabbitMqContainer

        with RabbitMqContainer("rabbitmq:3.13-alpine") as container:
            params = container.get_connection_params()
            yield f"amqp://guest:guest@{params.host}:{params.port}/"
        return
    _missing("RabbitMQ", "Start it (see ENV.md / .ci/run) or set KUBESERVE_TEST_AMQP_URL.")


@pytest.fixture
def bus_prefix() -> str:
    """A prefix isolating one test's exchanges and queues on the shared broker."""
    return f"t{uuid.uuid4().hex[:10]}."


@pytest.fixture
async def rabbit_bus_factory(
    amqp_url: str, bus_prefix: str
) -> AsyncIterator[Callable[..., RabbitMQBus]]:
    """Make connected-later RabbitMQ buses under this test's prefix; their queues and exchanges
    are deleted afterwards."""
    buses: list[RabbitMQBus] = []

    def make(service: str = "test", url: str | None = None, **kw: object) -> RabbitMQBus:
        bus = RabbitMQBus(url or amqp_url, service=service, topology=Topology(bus_prefix), **kw)  # type: ignore[arg-type]
        buses.append(bus)
        return bus

    yield make
    for bus in buses:
        await bus.close()
    await delete_topology(
        amqp_url, Topology(bus_prefix), {q for b in buses for q in b.declared_queues}
    )


async def delete_topology(url: str, topology: Topology, queues: set[str]) -> None:
    conn = await aio_pika.connect(url, timeout=10)
    try:
        for name in queues:
            channel = await conn.channel()
            with contextlib.suppress(Exception):
                await channel.queue_delete(name)
            with contextlib.suppress(Exception):
                await channel.close()
        channel = await conn.channel()
        for exchange in (topology.events_exchange, topology.dead_letter_exchange):
            with contextlib.suppress(Exception):
                await channel.exchange_delete(exchange)
    finally:
        await conn.close()


# -- S3 (moto's server over HTTP) --------------------------------------------------------------


@pytest.fixture(scope="session")
def s3_url() -> Iterator[str]:
    env = os.environ.get("KUBESERVE_TEST_S3_URL")
    if env:
        yield env
        return
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


# -- link cutting ----------------------------------------------------------------------------


@pytest.fixture
def tcp_proxy() -> Iterator[Callable[[str, int], TcpProxy]]:
    """`tcp_proxy(host, port)` starts a cuttable proxy to that address; closed after the test."""
    proxies: list[TcpProxy] = []

    def make(host: str, port: int) -> TcpProxy:
        proxy = TcpProxy(host, port).start()
        proxies.append(proxy)
        return proxy

    yield make
    for proxy in proxies:
        proxy.close()


def address_of(url: str, default_port: int) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or default_port


# -- one service's settings on the real services ---------------------------------------------


@pytest.fixture
def bucket() -> str:
    """A fresh bucket name on the S3 server for this test."""
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def real_services_settings(
    database_url: str, amqp_url: str, bus_prefix: str, s3_url: str, bucket: str
) -> dict[str, object]:
    """Settings every service under test shares: dev mode on the run's PostgreSQL database,
    RabbitMQ under the test's prefix, a fresh bucket on the S3 server, a quick outbox relay.
    `MySettings(**real_services_settings, my_option=...)`."""
    return {
        "dev_mode": True,
        "internal_secret": TEST_INTERNAL_SECRET,
        "database_url": database_url,
        "broker_url": amqp_url,
        "bus_prefix": bus_prefix,
        "artifact_store_url": f"s3://{bucket}",
        "s3_endpoint_url": s3_url,
        "s3_access_key_id": "testing",
        "s3_secret_access_key": "testing",
        "outbox_poll_interval": 0.2,
        "log_json": False,
    }
