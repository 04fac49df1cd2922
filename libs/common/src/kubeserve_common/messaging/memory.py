"""In-process bus for the embedded mode and unit tests, with the RabbitMQ adapter's semantics:
topic routing, one queue per subscription (competing consumers share it), at-least-once
delivery, delayed retries, a bounded number of attempts and a dead-letter list per queue."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from kubeserve_common.events.envelope import CloudEvent
from kubeserve_common.events.topology import Topology, topic_matches
from kubeserve_common.messaging.bus import DeadLetter, EventBus, Handler, Subscription
from kubeserve_common.messaging.consumer import Outcome, run_handler


@dataclass
class _Queue:
    subscription: Subscription
    messages: asyncio.Queue[tuple[bytes, int]] = field(default_factory=asyncio.Queue)
    dead: list[DeadLetter] = field(default_factory=list)


class InMemoryBus(EventBus):
    def __init__(self, service: str = "embedded", topology: Topology | None = None) -> None:
        self.service = service
        self.topology = topology or Topology()
        self._queues: dict[str, _Queue] = {}
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

    async def healthy(self) -> bool:
        return self._connected

    async def publish(self, event: CloudEvent) -> None:
        if not self._connected:
            raise ConnectionError("in-memory bus is closed")
        body = event.to_json()
        for queue in self._queues.values():
            if any(topic_matches(p, event.type) for p in queue.subscription.event_types):
                queue.messages.put_nowait((body, 1))

    async def subscribe(self, subscription: Subscription, handler: Handler) -> None:
        queue = self._queues.get(subscription.queue)
        if queue is None:
            queue = self._queues[subscription.queue] = _Queue(subscription)
        for _ in range(subscription.prefetch):
            self._spawn(self._consume(queue, handler))

    async def dead_letters(self, queue: str) -> list[DeadLetter]:
        return list(self._queues[queue].dead) if queue in self._queues else []

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _consume(self, queue: _Queue, handler: Handler) -> None:
        sub = queue.subscription
        while True:
            body, attempt = await queue.messages.get()
            try:
                verdict = await run_handler(self.service, sub, handler, body, attempt)
            except asyncio.CancelledError:
                queue.messages.put_nowait((body, attempt))  # not acked: deliver again
                raise
            if verdict.outcome is Outcome.RETRY:
                self._spawn(self._redeliver_later(queue, body, attempt + 1))
            elif verdict.outcome is Outcome.DEAD:
                queue.dead.append(DeadLetter(sub.queue, body, verdict.reason, attempt))

    async def _redeliver_later(self, queue: _Queue, body: bytes, attempt: int) -> None:
        await asyncio.sleep(queue.subscription.retry_delay)
        queue.messages.put_nowait((body, attempt))
