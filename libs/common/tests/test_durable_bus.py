"""The embedded bus's durable queues: a message stays stored until its handler returned, so a
process killed (SIGKILL) mid-handling, or not running when the event was published, gets it on
its next start; handled messages never come back; dead letters can be replayed."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import sys
import textwrap
import uuid
from pathlib import Path

import pytest
from kubeserve_common.errors import PermanentError
from kubeserve_common.events import CloudEvent, UserRegistered
from kubeserve_common.events.topology import Topology
from kubeserve_common.messaging.bus import Subscription
from kubeserve_common.messaging.durable import DurableQueueStore
from kubeserve_common.messaging.memory import InMemoryBus
from kubeserve_common.testing.waiting import wait_until

USER = UserRegistered.event_type()
QUEUE = "q.test.users"


def user_event() -> CloudEvent:
    payload = UserRegistered(user_id=uuid.uuid4(), email="u@example.com", role="user")
    return CloudEvent.create(payload, service="test")


def bus_on(path: Path) -> InMemoryBus:
    return InMemoryBus("test", Topology(), store=DurableQueueStore(path))


async def test_a_queue_declared_earlier_keeps_what_is_published_while_nobody_consumes(
    tmp_path: Path,
) -> None:
    path = tmp_path / "bus.db"
    first = bus_on(path)
    await first.connect()
    seen: list[str] = []

    async def handle(event: CloudEvent) -> None:
        seen.append(event.id)

    await first.subscribe(Subscription(QUEUE, (USER,)), handle)
    handled = user_event()
    await first.publish(handled)
    await wait_until(lambda: seen == [handled.id], message="the first delivery")
    await first.close()

    # Published by another run while this queue's consumer is not started (the builder not yet
    # up when the registry's relay publishes, say).
    publisher = bus_on(path)
    await publisher.connect()
    waiting = user_event()
    await publisher.publish(waiting)
    await publisher.close()

    again = bus_on(path)
    await again.connect()
    await again.subscribe(Subscription(QUEUE, (USER,)), handle)
    await wait_until(lambda: len(seen) == 2, message="the stored message")
    await asyncio.sleep(0.2)
    assert seen == [handled.id, waiting.id]  # the handled one did not come back
    await again.close()


CHILD = textwrap.dedent(
    """
    import asyncio, sys, uuid
    from pathlib import Path
    from kubeserve_common.events import CloudEvent, UserRegistered
    from kubeserve_common.events.topology import Topology
    from kubeserve_common.messaging.bus import Subscription
    from kubeserve_common.messaging.durable import DurableQueueStore
    from kubeserve_common.messaging.memory import InMemoryBus

    async def main() -> None:
        bus = InMemoryBus("test", Topology(), store=DurableQueueStore(Path(sys.argv[1])))
        await bus.connect()

        async def handle(event) -> None:
            print("handling", event.id, flush=True)
            await asyncio.sleep(3600)  # killed in here, before the handler returns

        await bus.subscribe(Subscription("q.test.users", (UserRegistered.event_type(),)), handle)
        payload = UserRegistered(user_id=uuid.uuid4(), email="u@example.com", role="user")
        await bus.publish(CloudEvent.create(payload, service="test"))  # returned: stored
        await asyncio.sleep(3600)

    asyncio.run(main())
    """
)


async def test_a_process_killed_mid_handling_gets_the_message_again(tmp_path: Path) -> None:
    path = tmp_path / "bus.db"
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CHILD, str(path), stdout=asyncio.subprocess.PIPE
    )
    try:
        assert child.stdout is not None
        line = await asyncio.wait_for(child.stdout.readline(), 30)
        word, event_id = line.decode().split()
        assert word == "handling"
        os.kill(child.pid, signal.SIGKILL)
        await asyncio.wait_for(child.wait(), 10)
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()

    seen: list[str] = []

    async def handle(delivered: CloudEvent) -> None:
        seen.append(delivered.id)

    restarted = bus_on(path)
    await restarted.connect()
    await restarted.subscribe(Subscription(QUEUE, (USER,)), handle)
    await wait_until(lambda: seen == [event_id], message="the redelivery after the kill")
    await restarted.close()
    assert bus_on(path).store.pending(QUEUE) == []  # type: ignore[union-attr]


async def test_dead_letters_survive_a_restart_and_can_be_replayed(tmp_path: Path) -> None:
    path = tmp_path / "bus.db"
    bus = bus_on(path)
    await bus.connect()
    poisoned = True
    seen: list[str] = []

    async def handle(event: CloudEvent) -> None:
        if poisoned:
            raise PermanentError("cannot handle this one")
        seen.append(event.id)

    await bus.subscribe(Subscription(QUEUE, (USER,)), handle)
    event = user_event()
    await bus.publish(event)

    async def dead() -> bool:
        return len(await bus.dead_letters(QUEUE)) == 1

    await wait_until(dead, message="the dead letter")
    await bus.close()

    again = bus_on(path)
    await again.connect()
    await again.subscribe(Subscription(QUEUE, (USER,)), handle)
    [letter] = await again.dead_letters(QUEUE)
    assert "cannot handle this one" in letter.reason
    poisoned = False  # fixed: replay it
    assert await again.replay_dead_letters(QUEUE) == 1
    await wait_until(lambda: seen == [event.id], message="the replayed delivery")
    assert await again.dead_letters(QUEUE) == []
    await again.close()


async def test_a_store_that_cannot_record_an_ack_keeps_the_consumer_and_the_message(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Another connection holds the file's write lock while a handler finishes (past the
    # store's busy timeout): the ack cannot be written. The consumer goes on with the next
    # message, and the unacknowledged one is delivered again at the next start.
    path = tmp_path / "bus.db"
    bus = InMemoryBus("test", Topology(), store=DurableQueueStore(path, busy_timeout=0.1))
    await bus.connect()
    release = asyncio.Event()
    seen: list[str] = []

    async def handle(event: CloudEvent) -> None:
        await release.wait()
        seen.append(event.id)

    await bus.subscribe(Subscription(QUEUE, (USER,), prefetch=1), handle)
    first = user_event()
    await bus.publish(first)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    release.set()
    await wait_until(
        lambda: any("could not settle" in r.getMessage() for r in caplog.records),
        message="the refused ack",
    )
    assert seen == [first.id]
    holder.execute("COMMIT")
    holder.close()
    second = user_event()
    await bus.publish(second)
    await wait_until(lambda: seen == [first.id, second.id], message="the consumer still there")
    await bus.close()

    again = bus_on(path)
    await again.connect()
    await again.subscribe(Subscription(QUEUE, (USER,)), handle)
    await wait_until(lambda: seen[2:] == [first.id], message="the unacknowledged one again")
    await asyncio.sleep(0.2)
    assert seen == [first.id, second.id, first.id]  # the acknowledged one did not come back
    await again.close()
