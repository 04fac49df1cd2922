"""Every service starts on real PostgreSQL and RabbitMQ with its migrations applied and answers
/healthz, /readyz and /metrics; /readyz reports the database when its link is cut (and fails
for every service but the gateway, which serves predictions without it)."""

from __future__ import annotations

import importlib
from pathlib import Path

import asyncpg
import httpx
import pytest
from kubeserve_common.events.topology import Topology
from kubeserve_common.service import ServiceContainer
from kubeserve_common.testing.plugin import address_of, delete_topology, pg_url_via
from kubeserve_common.testing.servers import serve_app
from kubeserve_common.testing.waiting import wait_until

SERVICES = ["gateway", "auth", "registry", "builder", "deployer"]


def build(service: str, tmp_path: Path, **overrides: object) -> tuple[ServiceContainer, object]:
    settings_mod = importlib.import_module(f"kubeserve_{service}.settings")
    settings_cls = getattr(settings_mod, f"{service.capitalize()}Settings")
    bootstrap = importlib.import_module(f"kubeserve_{service}.bootstrap").bootstrap
    create_app = importlib.import_module(f"kubeserve_{service}.main").create_app
    container = bootstrap(settings_cls(dev_mode=True, home=tmp_path, **overrides))
    return container, create_app(container)


@pytest.mark.parametrize("service", SERVICES)
async def test_service_starts_migrated_and_healthy(
    service: str, tmp_path: Path, database_url: str, amqp_url: str, bus_prefix: str
) -> None:
    container, app = build(
        service, tmp_path, database_url=database_url, broker_url=amqp_url, bus_prefix=bus_prefix
    )
    try:
        with serve_app(app) as base:
            async with httpx.AsyncClient(base_url=base, timeout=10) as client:
                assert (await client.get("/healthz")).json() == {"status": "ok"}
                ready = await client.get("/readyz")
                assert ready.status_code == 200, ready.text
                assert ready.json()["checks"]["database"] == "ok"
                assert ready.json()["checks"]["broker"] == "ok"
                metrics = await client.get("/metrics")
                assert metrics.status_code == 200
                assert (
                    f'kubeserve_http_requests_total{{method="GET",route="/readyz",service="{service}",status="200"}}'
                    in metrics.text
                )
                missing = await client.get("/api/v1/no-such-route")
                assert missing.status_code == 404
                assert missing.json()["error"]["code"] == "not_found"
                assert missing.headers["x-request-id"]
    finally:
        await delete_topology(
            amqp_url, Topology(bus_prefix), getattr(container.bus, "declared_queues", set())
        )
    conn = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        version = await conn.fetchval(f"SELECT version_num FROM {service}.alembic_version")
        tables = {
            r["tablename"]
            for r in await conn.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = $1", service
            )
        }
    finally:
        await conn.close()
    assert version, "no migration recorded"
    if service == "gateway":
        # It publishes no event and consumes only on transient queues: no outbox, no inbox;
        # its one table is the rate-limit buckets the gateway replicas share.
        assert tables == {"alembic_version", "rate_buckets"}
    else:
        assert {"outbox", "inbox"} <= tables


@pytest.mark.parametrize("service", SERVICES)
async def test_readyz_fails_while_the_database_link_is_cut(
    service: str, tmp_path: Path, database_url: str, amqp_url: str, bus_prefix: str, tcp_proxy
) -> None:
    proxy = tcp_proxy(*address_of(database_url, 5432))
    container, app = build(
        service,
        tmp_path,
        database_url=pg_url_via(database_url, proxy),
        broker_url=amqp_url,
        bus_prefix=bus_prefix,
        db_timeout=2.0,
    )
    try:
        with serve_app(app) as base:
            async with httpx.AsyncClient(base_url=base, timeout=20) as client:
                assert (await client.get("/readyz")).status_code == 200
                proxy.cut()
                cut = await client.get("/readyz")
                # The gateway keeps serving predictions without its database: still ready.
                assert cut.status_code == (200 if service == "gateway" else 503), cut.text
                expected = "degraded" if service == "gateway" else "unavailable"
                assert cut.json()["status"] == expected
                assert cut.json()["checks"]["database"].startswith("unreachable")
                assert cut.json()["checks"]["broker"] == "ok"
                assert (await client.get("/healthz")).status_code == 200  # alive, just not ready
                proxy.restore()
                assert (await client.get("/readyz")).status_code == 200
    finally:
        proxy.restore()
        await delete_topology(
            amqp_url, Topology(bus_prefix), getattr(container.bus, "declared_queues", set())
        )


@pytest.mark.parametrize("service", SERVICES)
async def test_readyz_stays_ready_while_the_broker_link_is_cut(
    service: str, tmp_path: Path, database_url: str, amqp_url: str, bus_prefix: str, tcp_proxy
) -> None:
    """The outbox holds events while the broker is away, so no service leaves its Service (the
    chart's readiness probe) for a broker outage; `/readyz` says "degraded" and why."""
    proxy = tcp_proxy(*address_of(amqp_url, 5672))
    container, app = build(
        service,
        tmp_path,
        database_url=database_url,
        broker_url=pg_url_via(amqp_url, proxy),
        bus_prefix=bus_prefix,
        db_timeout=2.0,
    )
    try:
        with serve_app(app) as base:
            async with httpx.AsyncClient(base_url=base, timeout=20) as client:
                assert (await client.get("/readyz")).json()["status"] == "ok"
                proxy.cut()

                async def degraded() -> bool:
                    answer = await client.get("/readyz")
                    assert answer.status_code == 200, answer.text
                    return bool(answer.json()["status"] == "degraded")

                await wait_until(degraded, timeout=20, message="readiness reports the broker")
                answer = (await client.get("/readyz")).json()
                assert answer["checks"]["broker"] != "ok"
                assert answer["checks"]["database"] == "ok"
                proxy.restore()
    finally:
        proxy.restore()
        await delete_topology(
            amqp_url, Topology(bus_prefix), getattr(container.bus, "declared_queues", set())
        )
