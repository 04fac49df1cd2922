"""The builder's consumer: an uploaded version becomes a queued build (adapter: decode, call one
service method). It runs inside `idempotent()`: the inbox claim and the queue row share one
transaction, and the message is acked right after - the build itself runs in the build loop."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from kubeserve_common.db.uow import UnitOfWork
from kubeserve_common.errors import PermanentError
from kubeserve_common.events.catalog import VersionUploaded
from kubeserve_common.events.envelope import CloudEvent

from kubeserve_builder.services.builds import BuildQueue

UPLOADS = (VersionUploaded.event_type(),)


def uploads_handler(
    queue: BuildQueue, on_queued: Callable[[], None] | None = None
) -> Callable[[CloudEvent, UnitOfWork], Awaitable[None]]:
    async def effect(event: CloudEvent, uow: UnitOfWork) -> None:
        payload = event.payload()  # a payload that does not validate is dead-lettered
        if not isinstance(payload, VersionUploaded):
            raise PermanentError(f"unexpected event type {event.type}")
        added = await queue.enqueue(uow, payload, event.id)
        if added and on_queued is not None:
            # Wakes the build loop early; it polls anyway, so a wake before the commit is
            # harmless (it finds nothing and looks again).
            on_queued()

    return effect
