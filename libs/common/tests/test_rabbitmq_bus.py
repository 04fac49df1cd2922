"""RabbitMQ-specific behaviour beyond the shared contract: crashes and lost connections."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

from kubeserve_common.events import CloudEvent, UserRegistered
from kubeserve_common.messaging.bus import Subscription
from kubeserve_common.messaging.rabbitmq import RabbitMQBus
from kubeserve_common.testing.waiting import wait_until

USER = UserRegistered.event_type()


def user_event() -> CloudEvent:
    payload = UserRegistered(user_id=uuid.uuid4(), email="crash@example.com", role="user")
    return CloudEvent.create(payload, service="test")


async def test_a_message_that_kills_its_consumer_is_dead_lettered_after_max_attempts(
    rabbit_bus_factory: Callable[..., RabbitMQBus],
) -> None:
    publisher = rabbit_bus_factory("publisher")
    await publisher.connect()
    subscription = Subscription(publisher.topology.queue("test", "crashy"), (USER,), max_attempts=2)
    event = user_event()
    deliveries: list[str] = []
    for round_ in range(3):
        # A fresh consumer process each round; it dies while handling, leaving the message unacked.
        consumer = rabbit_bus_factory(f"consumer-{round_}")
        await consumer.connect()
        got = asyncio.Event()

        async def handler(received: CloudEvent, got: asyncio.Event = got) -> None:
            deliveries.append(received.id)
            got.set()
            await asyncio.sleep(3600)

        await consumer.subscribe(subscription, handler)
        if round_ == 0:
            await publisher.publish(event)
        try:
            await asyncio.wait_for(got.wait(), 5)
        except TimeoutError:
            await consumer.close()
            break
        await consumer.close()

    assert deliveries == [event.id, event.id], "expected exactly max_attempts deliveries"

    async def dead() -> bool:
        return len(await publisher.dead_letters(subscription.queue)) == 1

    await wait_until(dead, message="the crashing message in the dead-letter queue")
    [letter] = await publisher.dead_letters(subscription.queue)
    assert CloudEvent.from_json(letter.body).id == event.id
    assert letter.reason.startswith("broker:")


async def test_consumer_resumes_after_the_broker_link_comes_back(
    amqp_url: str,
    rabbit_bus_factory: Callable[..., RabbitMQBus],
    tcp_proxy: Callable[..., object],
) -> None:
    from kubeserve_common.testing.plugin import address_of

    host, port = address_of(amqp_url, 5672)
    proxy = tcp_proxy(host, port)
    consumer = rabbit_bus_factory(
        "consumer",
        url=amqp_url.replace(f"{host}:{port}", f"127.0.0.1:{proxy.port}"),  # type: ignore[attr-defined]
        reconnect_interval=0.5,
    )
    publisher = rabbit_bus_factory("publisher")
    await consumer.connect()
    await publisher.connect()
    seen: list[str] = []

    async def handler(event: CloudEvent) -> None:
        seen.append(event.id)

    await consumer.subscribe(
        Subscription(consumer.topology.queue("test", "resume"), (USER,)), handler
    )
    first = user_event()
    await publisher.publish(first)
    await wait_until(lambda: seen == [first.id], message="first delivery")

    proxy.cut()  # type: ignore[attr-defined]

    async def unhealthy() -> bool:
        return not await consumer.healthy()

    await wait_until(unhealthy, timeout=10, message="the consumer noticing the cut (readiness)")
    during = user_event()
    await publisher.publish(during)  # the broker keeps it for the durable queue
    await asyncio.sleep(1)
    proxy.restore()  # type: ignore[attr-defined]

    await wait_until(lambda: during.id in seen, timeout=30, message="delivery after reconnect")
    await wait_until(consumer.healthy, timeout=30, message="consumer healthy again")
