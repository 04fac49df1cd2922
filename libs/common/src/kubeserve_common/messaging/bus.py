"""The event-bus port. Adapters: `rabbitmq.RabbitMQBus` and `memory.InMemoryBus`; both pass the
same contract suite (libs/common/tests/test_bus_contract.py)."""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from kubeserve_common.events.envelope import CloudEvent

Handler = Callable[[CloudEvent], Awaitable[None]]


@dataclass(frozen=True)
class Subscription:
    """One durable consumer queue bound to the event types (topic patterns) it needs.

    A message is tried at most `max_attempts` times (retries after transient errors plus
    redeliveries after crashes), `retry_delay` seconds apart, then dead-lettered.

    `transient=True` is for a per-process fan-out (e.g. the gateway's server-sent events): the
    queue lives only as long as the process's connection (RabbitMQ: exclusive, auto-delete, not
    durable, no retry or dead-letter queues) and a message whose handler fails is dropped.
    """

    queue: str
    event_types: tuple[str, ...]
    max_attempts: int = 5
    retry_delay: float = 2.0
    prefetch: int = 16
    transient: bool = False

    def __post_init__(self) -> None:
        if not self.event_types:
            raise ValueError("a subscription needs at least one event type")
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")


@dataclass(frozen=True)
class DeadLetter:
    queue: str
    body: bytes
    reason: str
    attempts: int


class EventBus(abc.ABC):
    """Publish CloudEvents to the `kubeserve.events` topic; consume them per subscription."""

    @abc.abstractmethod
    async def connect(self) -> None:
        """Open connections and declare the exchanges."""

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    async def publish(self, event: CloudEvent) -> None:
        """Return once the broker has confirmed the event; raise when it did not in time."""

    @abc.abstractmethod
    async def subscribe(self, subscription: Subscription, handler: Handler) -> None:
        """Declare the subscription's queues and start delivering to `handler`.

        The handler commits its own transaction; the message is acknowledged only after it
        returns. Errors are classified by `consumer.classify_failure`.
        """

    @abc.abstractmethod
    async def healthy(self) -> bool:
        """Whether the bus can publish right now (readiness)."""

    @abc.abstractmethod
    async def dead_letters(self, queue: str) -> list[DeadLetter]:
        """Messages dead-lettered from `queue` (inspection; the RabbitMQ adapter peeks and
        requeues, it does not consume them)."""

    async def replay_dead_letters(self, queue: str) -> int:
        """Move `queue`'s dead letters back into it for another try (after the cause was
        fixed); how many. The `dlq replay` command."""
        raise NotImplementedError(f"{type(self).__name__} cannot replay dead letters")
