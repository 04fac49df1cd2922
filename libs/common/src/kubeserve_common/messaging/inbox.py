"""Idempotent consumers: the inbox claim and the handler's effect share one transaction."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from kubeserve_common.db.uow import UnitOfWork, UnitOfWorkFactory
from kubeserve_common.errors import PermanentError
from kubeserve_common.events.catalog import EventPayload
from kubeserve_common.events.envelope import CloudEvent
from kubeserve_common.messaging.bus import Handler
from kubeserve_common.metrics import CONSUMER_MESSAGES

EffectHandler = Callable[[CloudEvent, UnitOfWork], Awaitable[None]]


def idempotent(
    service: str, consumer: str, uow_factory: UnitOfWorkFactory, effect: EffectHandler
) -> Handler:
    """Wrap `effect` so each event id has its effect at most once for `consumer`.

    The effect runs inside an open unit of work that already holds the inbox claim; it must not
    commit - the wrapper commits claim and effect together, so a crash in between leaves neither.
    """

    async def handle(event: CloudEvent) -> None:
        async with uow_factory() as uow:
            if not await uow.claim(consumer, event.id):
                CONSUMER_MESSAGES.labels(service, consumer, "duplicate").inc()
                return
            await effect(event, uow)
            await uow.commit()

    return handle


PayloadEffect = Callable[[UnitOfWork, Any], Awaitable[object]]


def dispatch(routes: Mapping[type[EventPayload], PayloadEffect]) -> EffectHandler:
    """An effect that decodes the event's typed payload and calls the entry for its type.

    A payload that does not validate raises pydantic's ValidationError and an event type with no
    entry raises PermanentError: both are dead-lettered by the consumer runner.
    """

    async def effect(event: CloudEvent, uow: UnitOfWork) -> None:
        payload = event.payload()
        handler = routes.get(type(payload))
        if handler is None:
            raise PermanentError(f"unexpected event type {event.type}")
        await handler(uow, payload)

    return effect
