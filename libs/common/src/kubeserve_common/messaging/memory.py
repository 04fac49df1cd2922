"""In-process bus for the embedded mode and unit tests, with the RabbitMQ adapter's semantics:
topic routing, one queue per subscription (competing consumers share it), at-least-once
delivery, delayed retries, a bounded number of attempts and a dead-letter list per queue.

With a `DurableQueueStore` (what `kubeserve up` uses), durable queues live in an SQLite file:
`publish` returns once the message is stored for every durable queue bound to its type
(declared in this run or an earlier one), and a message leaves the store only when its
handler returned (after the consumer's inbox commit) or it was dead-lettered - a crash at any
moment redelivers it on the next start. Transient queues stay in memory."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any

from kubeserve_common.events.envelope import CloudEvent
from kubeserve_common.events.topology import Topology, topic_matches
from kubeserve_common.messaging.bus import DeadLetter, EventBus, Handler, Subscription
from kubeserve_common.messaging.consumer import Outcome, run_handler
from kubeserve_common.messaging.durable import DurableQueueStore

log = logging.getLogger(__name__)

# (body, attempt, row id in the durable store or None)
_Message = tuple[bytes, int, int | None]


@dataclass
class _Queue:
    subscription: Subscription
    messages: asyncio.Queue[_Message] = field(default_factory=asyncio.Queue)
    dead: list[DeadLetter] = field(default_factory=list)


class InMemoryBus(EventBus):
    def __init__(
        self,
        service: str = "embedded",
        topology: Topology | None = None,
        *,
        store: DurableQueueStore | None = None,
    ) -> None:
        self.service = service
        self.topology = topology or Topology()
        self.store = store
        self._queues: dict[str, _Queue] = {}
        self._durable: dict[str, tuple[str, ...]] = store.queues() if store else {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._connected = False

    async def connect(self) -> None:
        self._connected = True

    async def close(self) -> None:
        self._connected = False
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        if self.store is not None:
            self.store.close()

    async def healthy(self) -> bool:
        return self._connected

    async def publish(self, event: CloudEvent) -> None:
        if not self._connected:
            raise ConnectionError("in-memory bus is closed")
        body = event.to_json()
        stored: dict[str, int] = {}
        if self.store is not None:
            # Stored first ("confirmed"): the relay marks its outbox row sent only after this.
            durable = [
                name
                for name, patterns in self._durable.items()
                if any(topic_matches(p, event.type) for p in patterns)
            ]
            if durable:
                stored = self.store.enqueue(durable, body)
        for name, queue in self._queues.items():
            if name in stored:
                queue.messages.put_nowait((body, 1, stored[name]))
            elif name not in self._durable and any(
                topic_matches(p, event.type) for p in queue.subscription.event_types
            ):
                queue.messages.put_nowait((body, 1, None))

    async def subscribe(self, subscription: Subscription, handler: Handler) -> None:
        queue = self._queues.get(subscription.queue)
        if queue is None:
            queue = _Queue(subscription)
            if self.store is not None and not subscription.transient:
                # Declared and loaded with no await in between: no publish can slip through.
                self.store.declare(subscription.queue, subscription.event_types)
                self._durable[subscription.queue] = subscription.event_types
                for message_id, body, attempt in self.store.pending(subscription.queue):
                    queue.messages.put_nowait((body, attempt, message_id))
            self._queues[subscription.queue] = queue
        for _ in range(subscription.prefetch):
            self._spawn(self._consume(queue, handler))

    async def dead_letters(self, queue: str) -> list[DeadLetter]:
        if self.store is not None and queue in self._durable:
            return [DeadLetter(queue, b, r, a) for _, b, r, a in self.store.dead(queue)]
        return list(self._queues[queue].dead) if queue in self._queues else []

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _consume(self, queue: _Queue, handler: Handler) -> None:
        sub = queue.subscription
        while True:
            body, attempt, message_id = await queue.messages.get()
            try:
                verdict = await run_handler(self.service, sub, handler, body, attempt)
            except asyncio.CancelledError:
                # not acked: deliver again (the stored row stays for the next start)
                queue.messages.put_nowait((body, attempt, message_id))
                raise
            if verdict.outcome is Outcome.RETRY:
                if self.store is not None and message_id is not None:
                    with _settling(message_id):
                        self.store.retry(message_id, attempt + 1)
                self._spawn(self._redeliver_later(queue, (body, attempt + 1, message_id)))
            elif verdict.outcome is Outcome.DEAD:
                if self.store is not None and sub.queue in self._durable:
                    with _settling(message_id):
                        self.store.dead_letter(message_id, sub.queue, body, verdict.reason, attempt)
                else:
                    queue.dead.append(DeadLetter(sub.queue, body, verdict.reason, attempt))
            elif self.store is not None and message_id is not None:
                with _settling(message_id):
                    self.store.ack(message_id)

    async def _redeliver_later(self, queue: _Queue, message: _Message) -> None:
        await asyncio.sleep(queue.subscription.retry_delay)
        queue.messages.put_nowait(message)

    async def replay_dead_letters(self, queue: str) -> int:
        """Move a queue's dead letters back into it (the `dlq replay` command); how many."""
        if self.store is not None and queue in self._durable:
            moved = self.store.replay(queue)
            live = self._queues.get(queue)
            if live is not None:  # consumed in this process: deliver now (else at its start)
                for message_id, body in moved:
                    live.messages.put_nowait((body, 1, message_id))
            return len(moved)
        live = self._queues.get(queue)
        if live is None:
            return 0
        letters, live.dead[:] = list(live.dead), []
        for letter in letters:
            live.messages.put_nowait((letter.body, 1, None))
        return len(letters)


@contextlib.contextmanager
def _settling(message_id: int | None) -> Iterator[None]:
    """Record a message's fate in the durable store; when the store refuses (locked past its
    busy timeout, disk full) the consumer carries on and the row stays: the message comes
    again at the next start, and the consumer's inbox drops it if it was handled."""
    try:
        yield
    except sqlite3.Error as exc:
        log.warning(
            "durable bus: could not settle message %s, it will come again: %r", message_id, exc
        )
