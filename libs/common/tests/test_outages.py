"""Dependency loss is a 503 with Retry-After and a code naming the dependency, never a 500, and
one log line per outage: a real PostgreSQL and RabbitMQ behind a proxy we cut, an S3 client and
an HTTP call to a port where nothing listens."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aio_pika
import aiohttp
import httpx
import pytest
from fastapi import APIRouter
from kubeserve_common.db.session import create_engine
from kubeserve_common.messaging.memory import InMemoryBus
from kubeserve_common.net import free_port
from kubeserve_common.service import build_container
from kubeserve_common.settings import CommonSettings
from kubeserve_common.storage.s3 import S3ArtifactStore
from kubeserve_common.testing.plugin import address_of, pg_url_via
from kubeserve_common.testing.proxy import TcpProxy
from kubeserve_common.testing.servers import serve_app
from kubeserve_common.web.app import create_service_app
from kubeserve_common.web.outages import OutageLog, classify, log_loop_failure
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import create_async_engine

MIGRATIONS = Path(__file__).resolve().parents[3] / "services" / "gateway" / "migrations"


def _app(tmp_path: Path, router: APIRouter) -> Any:
    settings = CommonSettings(
        dev_mode=True,
        database_url=f"sqlite+aiosqlite:///{tmp_path}/gateway.db",
        broker_url="memory://",
    )
    container = build_container("gateway", settings, MIGRATIONS, bus=InMemoryBus())
    return create_service_app(container, [router])


def _outage_lines(caplog: pytest.LogCaptureFixture, dependency: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "kubeserve_common.web.outages" and r.getMessage().startswith(dependency)
    ]


async def test_a_cut_database_answers_503_database_unavailable_logged_once(
    tmp_path: Path,
    postgres_database: str,
    tcp_proxy: Callable[[str, int], TcpProxy],
    caplog: pytest.LogCaptureFixture,
) -> None:
    proxy = tcp_proxy(*address_of(postgres_database, 5432))
    url = pg_url_via(postgres_database, proxy)
    router = APIRouter()
    engines: list[Any] = []

    @router.get("/count")
    async def count() -> dict[str, int]:
        if not engines:  # made on the server's own loop
            engines.append(create_engine(url, "public"))
        async with engines[0].connect() as conn:
            return {"one": (await conn.execute(text("SELECT 1"))).scalar_one()}

    with serve_app(_app(tmp_path, router)) as base, caplog.at_level(logging.WARNING):
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            assert (await client.get("/count")).json() == {"one": 1}
            proxy.cut()
            answers = [await client.get("/count") for _ in range(5)]
            proxy.restore()
            assert (await client.get("/count")).status_code == 200
    for answer in answers:
        assert answer.status_code == 503, answer.text
        assert answer.headers["retry-after"] == "2"
        assert answer.json()["error"]["code"] == "database_unavailable"
    assert len(_outage_lines(caplog, "database")) == 1  # one line for the outage
    assert not [r for r in caplog.records if r.getMessage() == "unhandled error"]


async def test_a_cut_broker_answers_503_broker_unavailable(
    tmp_path: Path, amqp_url: str, tcp_proxy: Callable[[str, int], TcpProxy]
) -> None:
    proxy = tcp_proxy(*address_of(amqp_url, 5672))
    url = pg_url_via(amqp_url, proxy)
    router = APIRouter()
    channels: list[Any] = []

    @router.post("/publish")
    async def publish() -> dict[str, bool]:
        if not channels:
            connection = await aio_pika.connect(url, timeout=5)
            channels.append(await connection.channel())
        await channels[0].default_exchange.publish(
            aio_pika.Message(b"x"), routing_key="nowhere", timeout=5
        )
        return {"published": True}

    with serve_app(_app(tmp_path, router)) as base:
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            assert (await client.post("/publish")).status_code == 200
            proxy.cut()
            answer = await client.post("/publish")
    assert answer.status_code == 503, answer.text
    assert answer.json()["error"]["code"] == "broker_unavailable"
    assert answer.headers["retry-after"] == "2"


async def test_an_unreachable_object_store_or_service_answers_503(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    store = S3ArtifactStore(
        bucket="nowhere",
        endpoint_url=dead,
        access_key_id="testing",
        secret_access_key="testing",
        max_attempts=1,
    )
    router = APIRouter()

    @router.get("/artifact")
    async def artifact() -> dict[str, bool]:
        return {"exists": await store.exists("models/a/b")}

    @router.get("/other-service")
    async def other_service() -> dict[str, int]:
        async with httpx.AsyncClient() as client:
            return {"status": (await client.get(dead)).status_code}

    with serve_app(_app(tmp_path, router)) as base:
        async with httpx.AsyncClient(base_url=base, timeout=60) as client:
            storage = await client.get("/artifact")
            upstream = await client.get("/other-service")
    assert storage.status_code == 503, storage.text
    assert storage.json()["error"]["code"] == "storage_unavailable"
    assert storage.headers["retry-after"] == "2"
    assert upstream.status_code == 503, upstream.text
    assert upstream.json()["error"]["code"] == "upstream_unavailable"
    assert upstream.headers["retry-after"] == "2"


def test_an_answer_that_is_not_an_outage_stays_what_it_is() -> None:
    # A constraint violation is the database answering, not the database being away.
    assert classify(IntegrityError("INSERT", {}, Exception("duplicate key"))) is None
    assert classify(RuntimeError("a bug")) is None
    assert classify(KeyError("x")) is None


def test_an_outage_is_logged_once_then_again_after_a_quiet_spell() -> None:
    now = [0.0]
    outages = OutageLog(quiet=30, clock=lambda: now[0])
    outage = classify(ConnectionRefusedError(111, "refused", None))
    assert outage is None  # raised by no known client: we cannot say which dependency
    error = _raised_by_httpx()
    outage = classify(error)
    assert outage is not None and outage.code == "upstream_unavailable"
    assert outages.note("svc", outage, error) is True
    now[0] = 10
    assert outages.note("svc", outage, error) is False
    now[0] = 35  # failures kept coming: still the same outage
    assert outages.note("svc", outage, error) is False
    now[0] = 70  # 35 s without a failure: a new outage
    assert outages.note("svc", outage, error) is True


def test_a_background_loop_logs_an_outage_once_and_a_bug_every_time(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A reconcile or build loop retrying every second through a 15 s database cut wrote a
    # traceback per pass (issue 15: ~150 in the logs); an outage is one warning per loop.
    now = [0.0]
    outages = OutageLog(quiet=30, clock=lambda: now[0])
    loop = logging.getLogger("kubeserve_test.loop")
    away = _raised_by_httpx()
    with caplog.at_level(logging.INFO, logger="kubeserve_test.loop"):
        for second in range(15):
            now[0] = float(second)
            log_loop_failure(loop, "reconcile pass failed", away, outages=outages)
            log_loop_failure(loop, "autoscaler tick failed", away, outages=outages)
        for _ in range(2):
            log_loop_failure(loop, "reconcile pass failed", RuntimeError("a bug"), outages=outages)
        now[0] = 60.0  # a new outage, after a quiet spell
        log_loop_failure(loop, "reconcile pass failed", away, outages=outages)
    outage_lines = [r for r in caplog.records if "unavailable" in r.getMessage()]
    assert [r.getMessage().split(":")[0] for r in outage_lines] == [
        "reconcile pass failed",
        "autoscaler tick failed",
        "reconcile pass failed",
    ]
    assert all(r.levelno == logging.WARNING and r.exc_info is None for r in outage_lines)
    assert "upstream unavailable" in outage_lines[0].getMessage()
    assert outage_lines[2].__dict__["previous_outage_suppressed"] == 14
    bugs = [r for r in caplog.records if r.exc_info is not None]
    assert len(bugs) == 2 and all(r.levelno == logging.ERROR for r in bugs)
    assert bugs[0].getMessage() == "reconcile pass failed"


def _raised_by_httpx() -> BaseException:
    try:
        httpx.get(f"http://127.0.0.1:{free_port()}", timeout=2)
    except httpx.HTTPError as exc:
        return exc
    raise AssertionError("nothing should listen there")


async def test_a_locked_sqlite_file_is_a_503_and_a_missing_table_stays_a_500(
    tmp_path: Path,
) -> None:
    # The embedded mode's database: another process holding the write lock past the busy
    # timeout is the database being unavailable; a query on a table that does not exist (the
    # same OperationalError class in sqlite3) is a bug.
    path = tmp_path / "locked.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x INTEGER)")
    router = APIRouter()
    engines: list[Any] = []

    def engine() -> Any:
        if not engines:
            engines.append(
                create_async_engine(f"sqlite+aiosqlite:///{path}", connect_args={"timeout": 0.2})
            )
        return engines[0]

    @router.post("/write")
    async def write() -> dict[str, bool]:
        async with engine().begin() as conn:
            await conn.execute(text("INSERT INTO t (x) VALUES (1)"))
        return {"written": True}

    @router.get("/missing")
    async def missing() -> dict[str, int]:
        async with engine().connect() as conn:
            return {"n": (await conn.execute(text("SELECT count(*) FROM nope"))).scalar_one()}

    holder.execute("BEGIN EXCLUSIVE")
    try:
        with serve_app(_app(tmp_path, router)) as base:
            async with httpx.AsyncClient(base_url=base, timeout=30) as client:
                locked = await client.post("/write")
                holder.execute("COMMIT")
                assert (await client.post("/write")).status_code == 200
                bug = await client.get("/missing")
    finally:
        holder.close()
    assert locked.status_code == 503, locked.text
    assert locked.json()["error"]["code"] == "database_unavailable"
    assert bug.status_code == 500, bug.text
    assert bug.json()["error"]["code"] == "internal"


async def test_postgres_and_the_broker_refusing_a_command_stay_500s(
    tmp_path: Path, postgres_database: str, amqp_url: str
) -> None:
    # Reachable dependencies answering no: a value of the wrong type for a parameter, a queue
    # that does not exist - bugs, not outages.
    router = APIRouter()
    engines: list[Any] = []

    @router.get("/typed")
    async def typed() -> dict[str, int]:
        if not engines:
            engines.append(create_engine(postgres_database, "public"))
        async with engines[0].connect() as conn:
            query = text("SELECT CAST(:n AS integer) + 1")
            return {"n": (await conn.execute(query, {"n": "not a number"})).scalar_one()}

    @router.get("/queue")
    async def queue() -> dict[str, int]:
        connection = await aio_pika.connect(amqp_url, timeout=5)
        async with connection:
            channel = await connection.channel()
            declared = await channel.declare_queue(f"q.missing.{free_port()}", passive=True)
            return {"messages": declared.declaration_result.message_count or 0}

    with serve_app(_app(tmp_path, router)) as base:
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            typed_answer = await client.get("/typed")
            queue_answer = await client.get("/queue")
    assert typed_answer.status_code == 500, typed_answer.text
    assert queue_answer.status_code == 500, queue_answer.text


async def test_an_unreachable_cluster_api_is_upstream_not_storage() -> None:
    # kubernetes_asyncio (the deployer's cluster client) speaks aiohttp; its refusal is another
    # service being away, not the object store (whose aiohttp errors botocore wraps).
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientError) as refused:
            await session.get(f"http://127.0.0.1:{free_port()}/api")
    outage = classify(refused.value)
    assert outage is not None and outage.code == "upstream_unavailable"
