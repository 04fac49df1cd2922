"""One contract, two adapters: the in-process bus must behave like the RabbitMQ bus."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aio_pika
import pytest
from kubeserve_common.errors import PermanentError, TransientError
from kubeserve_common.events import CloudEvent, DeploymentDeleted, UserRegistered
from kubeserve_common.events.topology import Topology
from kubeserve_common.messaging.bus import EventBus, Subscription
from kubeserve_common.messaging.durable import DurableQueueStore
from kubeserve_common.messaging.memory import InMemoryBus
from kubeserve_common.messaging.rabbitmq import RabbitMQBus
from kubeserve_common.testing.waiting import wait_until

USER = UserRegistered.event_type()
DELETED = DeploymentDeleted.event_type()


def user_event(n: int = 0) -> CloudEvent:
    payload = UserRegistered(user_id=uuid.uuid4(), email=f"u{n}@example.com", role="user")
    return CloudEvent.create(payload, service="test", tenant_id=str(payload.user_id))


def deleted_event() -> CloudEvent:
    return CloudEvent.create(
        DeploymentDeleted(deployment_id=uuid.uuid4(), owner_id=uuid.uuid4()), service="test"
    )


@pytest.fixture(params=["memory", "durable-memory", "rabbitmq"])
async def bus(
    request: pytest.FixtureRequest,
    bus_prefix: str,
    rabbit_bus_factory: Callable[..., RabbitMQBus],
    tmp_path: Path,
) -> AsyncIterator[EventBus]:
    if request.param == "memory":
        the_bus: EventBus = InMemoryBus("test", Topology(bus_prefix))
    elif request.param == "durable-memory":
        store = DurableQueueStore(tmp_path / "bus.db")
        the_bus = InMemoryBus("test", Topology(bus_prefix), store=store)
    else:
        the_bus = rabbit_bus_factory("test")
    await the_bus.connect()
    yield the_bus
    await the_bus.close()


def sub(bus: EventBus, purpose: str, *types: str, **kw: object) -> Subscription:
    topology: Topology = bus.topology  # type: ignore[attr-defined]
    kw.setdefault("retry_delay", 0.2)
    return Subscription(topology.queue("test", purpose), types, **kw)  # type: ignore[arg-type]


async def publish_raw(bus: EventBus, routing_key: str, body: bytes) -> None:
    """Inject a message that did not come from our publisher (a hostile or broken producer)."""
    if isinstance(bus, InMemoryBus):
        for queue in bus._queues.values():
            queue.messages.put_nowait((body, 1, None))
        return
    assert isinstance(bus, RabbitMQBus)
    assert bus._events is not None
    await bus._events.publish(aio_pika.Message(body=body), routing_key=routing_key)


async def test_delivers_only_matching_types(bus: EventBus) -> None:
    users: list[CloudEvent] = []
    everything: list[CloudEvent] = []

    async def on_user(event: CloudEvent) -> None:
        users.append(event)

    async def on_any(event: CloudEvent) -> None:
        everything.append(event)

    await bus.subscribe(sub(bus, "users", USER), on_user)
    await bus.subscribe(sub(bus, "all", "io.kubeserve.#"), on_any)
    first, second = user_event(1), deleted_event()
    await bus.publish(first)
    await bus.publish(second)

    await wait_until(lambda: len(everything) == 2, message="both events on the wildcard queue")
    await asyncio.sleep(0.3)
    assert [e.id for e in users] == [first.id]
    assert {e.id for e in everything} == {first.id, second.id}
    assert users[0].payload() == first.payload()
    assert users[0].tenantid == first.tenantid


async def test_competing_consumers_share_one_queue(bus: EventBus) -> None:
    seen: Counter[str] = Counter()
    by_worker: Counter[str] = Counter()

    def worker(name: str) -> Callable[[CloudEvent], object]:
        async def handle(event: CloudEvent) -> None:
            seen[event.id] += 1
            by_worker[name] += 1
            await asyncio.sleep(0.005)

        return handle

    subscription = sub(bus, "shared", USER, prefetch=4)
    await bus.subscribe(subscription, worker("a"))  # type: ignore[arg-type]
    await bus.subscribe(subscription, worker("b"))  # type: ignore[arg-type]
    events = [user_event(i) for i in range(60)]
    for event in events:
        await bus.publish(event)

    await wait_until(lambda: len(seen) == 60, message="all 60 events handled")
    await asyncio.sleep(0.3)
    assert set(seen) == {e.id for e in events}
    assert max(seen.values()) == 1, "an event was handled twice by competing consumers"
    assert by_worker["a"] > 0 and by_worker["b"] > 0


async def test_transient_failure_is_retried_then_succeeds(bus: EventBus) -> None:
    attempts: Counter[str] = Counter()
    done: list[str] = []

    async def flaky(event: CloudEvent) -> None:
        attempts[event.id] += 1
        if attempts[event.id] < 3:
            raise TransientError("dependency not ready yet")
        done.append(event.id)

    await bus.subscribe(sub(bus, "flaky", USER, max_attempts=5), flaky)
    event = user_event()
    await bus.publish(event)

    await wait_until(lambda: done == [event.id], message="the third attempt to succeed")
    assert attempts[event.id] == 3
    assert await bus.dead_letters(sub(bus, "flaky", USER).queue) == []


async def test_permanent_failure_dead_letters_and_later_messages_flow(bus: EventBus) -> None:
    handled: list[str] = []
    poison = user_event(0)

    async def handler(event: CloudEvent) -> None:
        if event.id == poison.id:
            raise PermanentError("this model cannot exist")
        handled.append(event.id)

    subscription = sub(bus, "poison", USER)
    await bus.subscribe(subscription, handler)
    later = [user_event(i) for i in range(1, 6)]
    await bus.publish(poison)
    for event in later:
        await bus.publish(event)

    await wait_until(lambda: len(handled) == 5, message="the messages after the poison one")
    assert set(handled) == {e.id for e in later}

    async def dead() -> bool:
        return len(await bus.dead_letters(subscription.queue)) == 1

    await wait_until(dead, message="the poison message in the dead-letter queue")
    [letter] = await bus.dead_letters(subscription.queue)
    assert CloudEvent.from_json(letter.body).id == poison.id
    assert "cannot exist" in letter.reason
    # Inspection does not consume: the dead letter is still there for an operator.
    assert len(await bus.dead_letters(subscription.queue)) == 1


async def test_retries_are_bounded_then_dead_lettered(bus: EventBus) -> None:
    attempts: Counter[str] = Counter()

    async def always_down(event: CloudEvent) -> None:
        attempts[event.id] += 1
        raise ConnectionError("database unreachable")

    subscription = sub(bus, "down", USER, max_attempts=3)
    await bus.subscribe(subscription, always_down)
    event = user_event()
    await bus.publish(event)

    async def dead() -> bool:
        return len(await bus.dead_letters(subscription.queue)) == 1

    await wait_until(dead, message="dead-lettering after 3 attempts")
    assert attempts[event.id] == 3
    [letter] = await bus.dead_letters(subscription.queue)
    assert "database unreachable" in letter.reason


async def test_invalid_messages_are_dead_lettered_without_reaching_the_handler(
    bus: EventBus,
) -> None:
    handled: list[str] = []

    async def handler(event: CloudEvent) -> None:
        handled.append(event.id)

    subscription = sub(bus, "hostile", USER)
    await bus.subscribe(subscription, handler)
    for garbage in (b"not json", b'{"specversion": "0.3"}', b"\xff" * 64, b"[]"):
        await publish_raw(bus, USER, garbage)
    good = user_event()
    await bus.publish(good)

    await wait_until(lambda: handled == [good.id], message="the good event after the garbage")

    async def four_dead() -> bool:
        return len(await bus.dead_letters(subscription.queue)) == 4

    await wait_until(four_dead, message="four invalid messages dead-lettered")
    reasons = [d.reason for d in await bus.dead_letters(subscription.queue)]
    assert all(r.startswith("invalid CloudEvent") for r in reasons)


async def test_publish_on_a_closed_bus_fails_loudly(bus: EventBus) -> None:
    await bus.close()
    with pytest.raises(ConnectionError):
        await bus.publish(user_event())


async def test_dead_letters_are_replayed_into_their_queue(bus: EventBus) -> None:
    """`kubeserve-<svc> dlq replay`: once the cause is fixed, the poison message goes back to
    its queue with a fresh attempt count and is handled; the dead-letter queue is empty."""
    fixed = False
    handled: list[str] = []

    async def handler(event: CloudEvent) -> None:
        if not fixed:
            raise PermanentError("a bug, fixed in the next release")
        handled.append(event.id)

    subscription = sub(bus, "replay", USER)
    await bus.subscribe(subscription, handler)
    poison = user_event()
    await bus.publish(poison)

    async def dead() -> bool:
        return len(await bus.dead_letters(subscription.queue)) == 1

    await wait_until(dead, message="the dead letter")
    fixed = True
    assert await bus.replay_dead_letters(subscription.queue) == 1
    await wait_until(lambda: handled == [poison.id], message="the replayed message handled")
    assert await bus.dead_letters(subscription.queue) == []


async def test_a_replay_while_the_cause_is_not_fixed_moves_each_letter_once(
    bus: EventBus,
) -> None:
    """A replay with the handler still failing ends: each dead letter goes back once (it is
    dead-lettered again at once, and that copy is not replayed in the same run)."""
    attempts: list[str] = []

    async def handler(event: CloudEvent) -> None:
        attempts.append(event.id)
        raise PermanentError("still broken")

    subscription = sub(bus, "replay_unfixed", USER)
    await bus.subscribe(subscription, handler)
    poison = user_event()
    await bus.publish(poison)

    async def dead() -> bool:
        return len(await bus.dead_letters(subscription.queue)) == 1

    await wait_until(dead, message="the dead letter")
    assert await asyncio.wait_for(bus.replay_dead_letters(subscription.queue), 60) == 1
    await wait_until(dead, message="dead-lettered again")
    assert attempts == [poison.id, poison.id]
