"""The outbox on real PostgreSQL and RabbitMQ: nothing lost across a broken broker link, no
double effects under duplicate delivery, no double publishing by concurrent relays."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable

import pytest
from kubeserve_common.db.base import messaging_metadata, outbox_table
from kubeserve_common.db.session import create_engine, create_session_factory
from kubeserve_common.db.uow import UnitOfWork, UnitOfWorkFactory
from kubeserve_common.events import CloudEvent, UserRegistered
from kubeserve_common.messaging.bus import EventBus, Handler, Subscription
from kubeserve_common.messaging.inbox import idempotent
from kubeserve_common.messaging.outbox import OutboxRelay
from kubeserve_common.messaging.rabbitmq import RabbitMQBus
from kubeserve_common.testing.plugin import address_of
from kubeserve_common.testing.waiting import wait_until
from prometheus_client import REGISTRY
from sqlalchemy import Column, MetaData, String, Table, func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

SCHEMA = "spine_test"
USER = UserRegistered.event_type()

effects_metadata = MetaData()
# No unique constraint on purpose: a double effect would show up as a second row.
effects = Table("effects", effects_metadata, Column("event_id", String(200), nullable=False))


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url, SCHEMA)
    async with engine.begin() as conn:
        await conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}"))
        await conn.run_sync(lambda c: messaging_metadata.create_all(c))
        await conn.run_sync(lambda c: effects_metadata.create_all(c))
        await conn.execute(text(f"TRUNCATE {SCHEMA}.outbox, {SCHEMA}.inbox, {SCHEMA}.effects"))
    yield engine
    await engine.dispose()


def user_event() -> CloudEvent:
    payload = UserRegistered(user_id=uuid.uuid4(), email="x@example.com", role="user")
    return CloudEvent.create(payload, service="test", tenant_id=str(payload.user_id))


async def write_events(uows: UnitOfWorkFactory, count: int, per_tx: int = 25) -> list[str]:
    ids: list[str] = []
    for start in range(0, count, per_tx):
        async with uows() as uow:
            for _ in range(min(per_tx, count - start)):
                event = user_event()
                await uow.publish(event)
                ids.append(event.id)
            await uow.commit()
    return ids


class DuplicatingBus(EventBus):
    """Test double around a real bus: every publish goes out twice, as a relay that crashed
    between publishing and marking would do - so every message is delivered twice."""

    def __init__(self, inner: EventBus) -> None:
        self.inner = inner

    async def connect(self) -> None:
        await self.inner.connect()

    async def close(self) -> None:
        await self.inner.close()

    async def publish(self, event: CloudEvent) -> None:
        await self.inner.publish(event)
        await self.inner.publish(event)

    async def subscribe(self, subscription: Subscription, handler: Handler) -> None:
        await self.inner.subscribe(subscription, handler)

    async def healthy(self) -> bool:
        return await self.inner.healthy()

    async def dead_letters(self, queue: str):  # type: ignore[no-untyped-def]
        return await self.inner.dead_letters(queue)


async def test_rolled_back_transaction_publishes_nothing(engine: AsyncEngine) -> None:
    uows = UnitOfWorkFactory(create_session_factory(engine))
    async with uows() as uow:
        await uow.publish(user_event())
        # leaving without commit
    async with engine.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(outbox_table))).scalar() == 0


async def test_thousand_events_survive_a_cut_broker_link_and_take_effect_once(
    engine: AsyncEngine,
    amqp_url: str,
    rabbit_bus_factory: Callable[..., RabbitMQBus],
    tcp_proxy: Callable[[str, int], object],
) -> None:
    host, port = address_of(amqp_url, 5672)
    proxy = tcp_proxy(host, port)
    proxied_url = amqp_url.replace(f"{host}:{port}", f"127.0.0.1:{proxy.port}")  # type: ignore[attr-defined]
    # The relay publishes through the cuttable link; every publish is sent twice.
    publisher = rabbit_bus_factory(
        "relay", url=proxied_url, publish_timeout=3.0, reconnect_interval=0.5
    )
    consumer_bus = rabbit_bus_factory("consumer")
    await publisher.connect()
    await consumer_bus.connect()

    sessions = create_session_factory(engine)
    relay = OutboxRelay(
        sessions,
        DuplicatingBus(publisher),
        service="test",
        batch_size=100,
        poll_interval=0.2,
        max_backoff=1.0,
    )
    uows = UnitOfWorkFactory(sessions, relay.wake)

    async def effect(event: CloudEvent, uow: UnitOfWork) -> None:
        await uow.session.execute(effects.insert().values(event_id=event.id))

    received: Counter[str] = Counter()
    handler = idempotent("test", "spine.effects", UnitOfWorkFactory(sessions), effect)

    async def counting(event: CloudEvent) -> None:
        received[event.id] += 1
        await handler(event)

    await consumer_bus.subscribe(
        Subscription(consumer_bus.topology.queue("test", "effects"), (USER,), prefetch=32),
        counting,
    )
    failures_before = _failures()
    relay.start()
    try:
        ids = await write_events(uows, 300)
        proxy.cut()  # type: ignore[attr-defined]
        ids += await write_events(uows, 400)  # written while the broker is unreachable
        await asyncio.sleep(2)
        proxy.restore()  # type: ignore[attr-defined]
        ids += await write_events(uows, 300)
        assert len(set(ids)) == 1000

        async def all_effects() -> bool:
            async with engine.connect() as conn:
                done = (
                    await conn.execute(select(func.count(func.distinct(effects.c.event_id))))
                ).scalar()
            return done == 1000

        await wait_until(all_effects, timeout=90, message="1000 effects after the link came back")
        await wait_until(
            lambda: all(received[i] >= 2 for i in ids),
            timeout=30,
            message="every message delivered twice",
        )
        async with engine.connect() as conn:
            rows = (await conn.execute(select(effects.c.event_id))).scalars().all()
            unsent = (
                await conn.execute(
                    select(func.count())
                    .select_from(outbox_table)
                    .where(outbox_table.c.sent_at.is_(None))
                )
            ).scalar()
        assert Counter(rows) == Counter({i: 1 for i in ids}), "an effect happened twice or never"
        assert unsent == 0
        assert _failures() > failures_before, "the cut never made a publish fail"
    finally:
        await relay.stop()


def _failures() -> float:
    value = REGISTRY.get_sample_value(
        "kubeserve_outbox_publish_failures_total", {"service": "test"}
    )
    return value or 0.0


class CountingBus(DuplicatingBus):
    """Test double around a real bus that records which relay published which event id."""

    def __init__(self, inner: EventBus, log: list[tuple[str, str]], name: str) -> None:
        super().__init__(inner)
        self.log, self.name = log, name

    async def publish(self, event: CloudEvent) -> None:
        await self.inner.publish(event)
        self.log.append((self.name, event.id))


async def test_two_relays_never_publish_the_same_row_twice(
    engine: AsyncEngine, database_url: str, rabbit_bus_factory: Callable[..., RabbitMQBus]
) -> None:
    ids = await write_events(UnitOfWorkFactory(create_session_factory(engine)), 600, per_tx=100)
    bus = rabbit_bus_factory("relays")
    await bus.connect()
    published: list[tuple[str, str]] = []
    # Two relays with engines of their own, as in two processes.
    other_engine = create_engine(database_url, SCHEMA)
    relays = [
        OutboxRelay(
            create_session_factory(e),
            CountingBus(bus, published, name),
            service="test",
            batch_size=20,
            poll_interval=0.1,
        )
        for e, name in ((engine, "a"), (other_engine, "b"))
    ]

    async def drain(relay: OutboxRelay) -> None:
        while await relay.publish_batch():
            pass

    try:
        await asyncio.gather(*(drain(r) for r in relays))
    finally:
        await other_engine.dispose()
    per_event = Counter(event_id for _, event_id in published)
    assert set(per_event) == set(ids)
    assert max(per_event.values()) == 1, "a row was published twice"
    by_relay = Counter(name for name, _ in published)
    assert by_relay["a"] > 0 and by_relay["b"] > 0, f"relays did not share the work: {by_relay}"
