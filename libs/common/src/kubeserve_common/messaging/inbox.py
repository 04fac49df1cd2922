"""Idempotent consumers: the inbox claim and the handler's effect share one transaction."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from kubeserve_common.db.uow import UnitOfWork, UnitOfWorkFactory
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
