"""RabbitMQ adapter of the event-bus port (aio-pika).

Topology per subscription `q.<svc>.<purpose>`:
- a durable quorum queue bound to `kubeserve.events` for each event type; its delivery limit
  bounds redeliveries after consumer crashes and its dead-letter exchange is `kubeserve.dlx`;
- `q.<svc>.<purpose>.retry`, a durable queue whose TTL is the retry delay and whose expired
  messages return to the main queue (delayed retry without plugins);
- `dlq.<svc>.<purpose>`, bound to `kubeserve.dlx`, where poison messages end.
Publishing uses a confirm channel and a timeout; connections are robust and named.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import aio_pika
import aiormq
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractRobustConnection,
)

from kubeserve_common.events.envelope import CLOUDEVENTS_CONTENT_TYPE, CloudEvent
from kubeserve_common.events.topology import Topology
from kubeserve_common.messaging.bus import DeadLetter, EventBus, Handler, Subscription
from kubeserve_common.messaging.consumer import Outcome, run_handler

log = logging.getLogger(__name__)

ATTEMPT_HEADER = "x-kubeserve-attempt"
REASON_HEADER = "x-kubeserve-reason"


class PublishNotConfirmed(ConnectionError):
    """The broker did not confirm a publish (nack, closed channel or timeout)."""


class RabbitMQBus(EventBus):
    def __init__(
        self,
        url: str,
        *,
        service: str,
        topology: Topology | None = None,
        publish_timeout: float = 10.0,
        connect_timeout: float = 10.0,
        reconnect_interval: float = 2.0,
    ) -> None:
        self.url = url
        self.service = service
        self.topology = topology or Topology()
        self.publish_timeout = publish_timeout
        self.connect_timeout = connect_timeout
        self.reconnect_interval = reconnect_interval
        self._connection: AbstractRobustConnection | None = None
        self._publish_channel: AbstractChannel | None = None
        self._events: AbstractExchange | None = None
        self._dlx: AbstractExchange | None = None
        self._consumer_channels: list[AbstractChannel] = []
        self.declared_queues: set[str] = set()  # for test teardown and operators' scripts

    # -- lifecycle ---------------------------------------------------------------------------
    async def connect(self) -> None:
        self._connection = await aio_pika.connect_robust(
            self.url,
            timeout=self.connect_timeout,
            reconnect_interval=self.reconnect_interval,
            client_properties={"connection_name": f"kubeserve-{self.service}"},
        )
        self._publish_channel = await self._connection.channel(publisher_confirms=True)
        self._events, self._dlx = await self._declare_exchanges(self._publish_channel)

    async def _declare_exchanges(
        self, channel: AbstractChannel
    ) -> tuple[AbstractExchange, AbstractExchange]:
        events = await channel.declare_exchange(
            self.topology.events_exchange, aio_pika.ExchangeType.TOPIC, durable=True
        )
        dlx = await channel.declare_exchange(
            self.topology.dead_letter_exchange, aio_pika.ExchangeType.DIRECT, durable=True
        )
        return events, dlx

    async def close(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._connection.close(), 10)
        self._connection = None

    async def healthy(self) -> bool:
        conn, channel = self._connection, self._publish_channel
        return bool(
            conn is not None
            and not conn.is_closed
            and conn.connected.is_set()
            and channel is not None
            and not channel.is_closed
        )

    # -- publishing --------------------------------------------------------------------------
    async def publish(self, event: CloudEvent) -> None:
        if self._events is None:
            raise PublishNotConfirmed("bus not connected")
        message = aio_pika.Message(
            body=event.to_json(),
            content_type=CLOUDEVENTS_CONTENT_TYPE,
            message_id=event.id,
            type=event.type,
            timestamp=event.time,
            app_id=f"kubeserve-{self.service}",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        )
        await self._confirmed(self._events, message, event.type)

    async def _confirmed(
        self, exchange: AbstractExchange, message: aio_pika.Message, routing_key: str
    ) -> None:
        try:
            result = await asyncio.wait_for(
                exchange.publish(message, routing_key=routing_key, mandatory=False),
                self.publish_timeout,
            )
        except (TimeoutError, aiormq.exceptions.AMQPError, ConnectionError, RuntimeError) as exc:
            raise PublishNotConfirmed(f"publish of {routing_key} failed: {exc!r}") from exc
        if not isinstance(result, aiormq.spec.Basic.Ack):
            raise PublishNotConfirmed(f"broker did not confirm {routing_key}: {result!r}")

    # -- consuming ---------------------------------------------------------------------------
    async def subscribe(self, subscription: Subscription, handler: Handler) -> None:
        if self._connection is None or self._publish_channel is None:
            raise RuntimeError("connect() first")
        channel = await self._connection.channel()
        await channel.set_qos(prefetch_count=subscription.prefetch)
        self._consumer_channels.append(channel)
        events, dlx = await self._declare_exchanges(channel)
        name = subscription.queue
        if subscription.transient:
            await self._subscribe_transient(channel, events, subscription, handler)
            return
        queue = await channel.declare_queue(
            name,
            durable=True,
            arguments={
                "x-queue-type": "quorum",
                "x-dead-letter-exchange": self.topology.dead_letter_exchange,
                "x-dead-letter-routing-key": name,
                # Returns (crashes, nacks) beyond this dead-letter the message, so a message that
                # kills its consumer is tried at most max_attempts times in all.
                "x-delivery-limit": max(subscription.max_attempts - 1, 0),
            },
        )
        self.declared_queues.update(
            {name, self.topology.dead_letter_queue(name), self.topology.retry_queue(name)}
        )
        for pattern in subscription.event_types:
            await queue.bind(events, routing_key=pattern)
        dead = await channel.declare_queue(self.topology.dead_letter_queue(name), durable=True)
        await dead.bind(dlx, routing_key=name)
        await channel.declare_queue(
            self.topology.retry_queue(name),
            durable=True,
            arguments={
                "x-message-ttl": int(subscription.retry_delay * 1000),
                "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": name,
            },
        )

        async def on_message(message: AbstractIncomingMessage) -> None:
            await self._deliver(subscription, handler, message)

        await queue.consume(on_message, consumer_tag=f"{self.service}-{name}-{id(handler):x}")

    async def _subscribe_transient(
        self,
        channel: AbstractChannel,
        events: AbstractExchange,
        subscription: Subscription,
        handler: Handler,
    ) -> None:
        """A queue that exists only while this connection does (RabbitMQ deletes it when the
        process goes away); a robust connection declares it again after a reconnect."""
        queue = await channel.declare_queue(
            subscription.queue,
            durable=False,
            exclusive=True,
            auto_delete=True,
            arguments={"x-max-length": 10_000, "x-overflow": "drop-head"},
        )
        for pattern in subscription.event_types:
            await queue.bind(events, routing_key=pattern)

        async def on_message(message: AbstractIncomingMessage) -> None:
            verdict = await run_handler(self.service, subscription, handler, message.body, 1)
            if verdict.outcome is not Outcome.ACK:
                log.warning("transient subscription dropped a message: %s", verdict.reason)
            with contextlib.suppress(Exception):
                await message.ack()

        await queue.consume(on_message, consumer_tag=f"{self.service}-{subscription.queue}")

    async def _deliver(
        self, sub: Subscription, handler: Handler, message: AbstractIncomingMessage
    ) -> None:
        headers: dict[str, Any] = dict(message.headers or {})
        attempt = _int(headers.get(ATTEMPT_HEADER), 1) + _int(headers.get("x-delivery-count"), 0)
        verdict = await run_handler(self.service, sub, handler, message.body, attempt)
        try:
            if verdict.outcome is Outcome.ACK:
                await message.ack()
                return
            assert self._publish_channel is not None
            if verdict.outcome is Outcome.RETRY:
                exchange = self._publish_channel.default_exchange
                routing_key = self.topology.retry_queue(sub.queue)
            else:
                assert self._dlx is not None
                exchange, routing_key = self._dlx, sub.queue
            out = _persistent_copy(
                message, {ATTEMPT_HEADER: attempt + 1, REASON_HEADER: verdict.reason[:1000]}
            )
            await self._confirmed(exchange, out, routing_key)
            await message.ack()
        except Exception as exc:  # the message stays unacked and comes back (bounded)
            log.warning("could not settle message, it will be redelivered: %r", exc)
            with contextlib.suppress(Exception):
                await message.nack(requeue=True)

    async def dead_letters(self, queue: str) -> list[DeadLetter]:
        if self._connection is None:
            raise RuntimeError("connect() first")
        channel = await self._connection.channel()
        try:
            dlq = await channel.declare_queue(self.topology.dead_letter_queue(queue), durable=True)
            held: list[AbstractIncomingMessage] = []
            while (msg := await dlq.get(no_ack=False, fail=False, timeout=5)) is not None:
                held.append(msg)
            result = [_dead_letter(queue, m) for m in held]
            for m in held:
                await m.nack(requeue=True)
            return result
        finally:
            await channel.close()

    async def replay_dead_letters(self, queue: str) -> int:
        """Move every message of `queue`'s dead-letter queue back into `queue` (default
        exchange, straight to the queue, attempts reset), each acked in the DLQ only after
        the broker confirmed its copy: a failure midway leaves the rest dead-lettered. Only the
        letters there when it starts: one dead-lettered again meanwhile (the cause not fixed,
        a live consumer) waits for the next replay instead of cycling forever."""
        if self._connection is None or self._publish_channel is None:
            raise RuntimeError("connect() first")
        channel = await self._connection.channel()
        replayed = 0
        try:
            dlq = await channel.declare_queue(self.topology.dead_letter_queue(queue), durable=True)
            remaining = dlq.declaration_result.message_count or 0
            default = self._publish_channel.default_exchange
            while (
                remaining > 0
                and (msg := await dlq.get(no_ack=False, fail=False, timeout=5)) is not None
            ):
                remaining -= 1
                headers = {
                    k: v
                    for k, v in (msg.headers or {}).items()
                    if k not in (ATTEMPT_HEADER, REASON_HEADER, "x-death")
                }
                copy = _persistent_copy(msg, headers)
                try:
                    await self._confirmed(default, copy, queue)
                except BaseException:
                    await msg.nack(requeue=True)
                    raise
                await msg.ack()
                replayed += 1
        finally:
            await channel.close()
        return replayed


def _dead_letter(queue: str, message: AbstractIncomingMessage) -> DeadLetter:
    headers = message.headers or {}
    reason = headers.get(REASON_HEADER)
    if reason is None:
        # Dead-lettered by the broker itself (the quorum queue's delivery limit).
        deaths = headers.get("x-death") or [{}]
        first = deaths[0] if isinstance(deaths, list) and deaths else {}
        if isinstance(first, dict):
            reason = f"broker: {_text(first.get('reason', 'unknown'))}"
        else:
            reason = ""
    return DeadLetter(queue, message.body, _text(reason), _int(headers.get(ATTEMPT_HEADER), 1) - 1)


def _text(value: object) -> str:
    # AMQP long strings that are not valid UTF-8 arrive as bytes (pamqp): show their text, not
    # the "b'...'" repr that str() or an f-string would give.
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", "replace")
    return str(value)


def _int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _persistent_copy(message: AbstractIncomingMessage, headers: dict[str, Any]) -> aio_pika.Message:
    """The message again, body and properties, with `headers` and persistent: what a retry, a
    dead letter and a replay publish."""
    return aio_pika.Message(
        body=message.body,
        headers=headers,
        content_type=message.content_type,
        message_id=message.message_id,
        type=message.type,
        timestamp=message.timestamp,
        app_id=message.app_id,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
    )
