"""Idle means idle: an outbox relay polls only as a safety net (backing off while idle) and is
woken at once by a commit in another process through PostgreSQL NOTIFY. Real PostgreSQL; the
bus is the in-process one (what matters here is when the relay publishes)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from kubeserve_common.db.base import messaging_metadata
from kubeserve_common.db.session import create_engine, create_session_factory
from kubeserve_common.db.uow import UnitOfWorkFactory
from kubeserve_common.events import CloudEvent, UserRegistered
from kubeserve_common.messaging.bus import Subscription
from kubeserve_common.messaging.memory import InMemoryBus
from kubeserve_common.messaging.outbox import OutboxRelay, notify_channel
from kubeserve_common.testing.waiting import wait_until
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

SCHEMA = "wakeup_test"
USER = UserRegistered.event_type()


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url, SCHEMA)
    async with engine.begin() as conn:
        await conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}"))
        await conn.run_sync(lambda c: messaging_metadata.create_all(c))
        await conn.execute(text(f"TRUNCATE {SCHEMA}.outbox"))
    yield engine
    await engine.dispose()


class CountingBus(InMemoryBus):
    published: int = 0

    async def publish(self, event: CloudEvent) -> None:
        self.published += 1
        await super().publish(event)


async def test_a_commit_elsewhere_wakes_the_relay_through_notify(engine: AsyncEngine) -> None:
    bus = InMemoryBus("test")
    await bus.connect()
    seen: list[str] = []

    async def handle(event: CloudEvent) -> None:
        seen.append(event.id)

    await bus.subscribe(Subscription("q.test.users", (USER,)), handle)
    sessions = create_session_factory(engine)
    # A poll far longer than the test: only the NOTIFY can wake it in time.
    relay = OutboxRelay(sessions, bus, service="wakeuptest", poll_interval=300)
    relay.start()
    try:
        await asyncio.sleep(0.5)  # its first (empty) pass is done; it now waits
        # "Another process": a unit of work that does not know this relay (no in-process wake).
        other = UnitOfWorkFactory(sessions, None, notify=notify_channel("wakeuptest"))
        event = CloudEvent.create(
            UserRegistered(user_id=uuid.uuid4(), email="n@example.com", role="user"),
            service="test",
        )
        async with other() as uow:
            await uow.publish(event)
            await uow.commit()
        await wait_until(lambda: seen == [event.id], timeout=20, message="the NOTIFY wake-up")
    finally:
        await relay.stop()
        await bus.close()


async def test_an_idle_relay_backs_off_its_safety_net_poll(engine: AsyncEngine) -> None:
    bus = CountingBus("test")
    await bus.connect()
    sessions = create_session_factory(engine)
    relay = OutboxRelay(sessions, bus, service="idletest", poll_interval=0.05, idle_interval=0.4)
    passes = 0
    real_batch = relay.publish_batch

    async def counted() -> int:
        nonlocal passes
        passes += 1
        return await real_batch()

    relay.publish_batch = counted  # type: ignore[method-assign]
    relay.start()
    try:
        await asyncio.sleep(3)
    finally:
        await relay.stop()
        await bus.close()
    # A fixed 50 ms poll would make ~60 passes in 3 s; doubling up to 400 ms makes about 10.
    assert passes < 20, passes


async def test_a_commit_during_a_pass_is_not_left_for_the_safety_net(engine: AsyncEngine) -> None:
    # The pass has read the outbox when a unit of work commits a row and wakes the relay: that
    # wake must start another pass, not be forgotten until the (here 300 s) poll.
    bus = InMemoryBus("test")
    await bus.connect()
    seen: list[str] = []

    async def handle(event: CloudEvent) -> None:
        seen.append(event.id)

    await bus.subscribe(Subscription("q.test.users", (USER,)), handle)
    sessions = create_session_factory(engine)
    relay = OutboxRelay(sessions, bus, service="duringpass", poll_interval=300)
    uow = UnitOfWorkFactory(sessions, relay.wake)  # in-process: its commit wakes the relay
    event = CloudEvent.create(
        UserRegistered(user_id=uuid.uuid4(), email="d@example.com", role="user"),
        service="test",
    )
    real_batch = relay.publish_batch
    passes = 0

    async def pass_with_a_commit_landing_after_its_read() -> int:
        nonlocal passes
        passes += 1
        published = await real_batch()
        if passes == 1:
            async with uow() as work:
                await work.publish(event)
                await work.commit()
        return published

    relay.publish_batch = pass_with_a_commit_landing_after_its_read  # type: ignore[method-assign]
    relay.start()
    try:
        await wait_until(lambda: seen == [event.id], timeout=20, message="the woken pass")
    finally:
        await relay.stop()
        await bus.close()
