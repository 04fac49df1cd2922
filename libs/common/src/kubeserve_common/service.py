"""What every service process is made of, wired by its `bootstrap()`: the database engine, the
bus, the outbox relay and its consumers. Used alike by the HTTP app, the worker and the tests."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from kubeserve_common.db.migrations import upgrade
from kubeserve_common.db.session import create_engine, create_session_factory, ping
from kubeserve_common.db.uow import UnitOfWorkFactory
from kubeserve_common.events.topology import Topology
from kubeserve_common.messaging.bus import EventBus, Handler, Subscription
from kubeserve_common.messaging.memory import InMemoryBus
from kubeserve_common.messaging.outbox import OutboxRelay, notify_channel
from kubeserve_common.settings import CommonSettings

log = logging.getLogger(__name__)


def create_bus(settings: CommonSettings, service: str) -> EventBus:
    topology = Topology(settings.bus_prefix)
    if settings.broker_url.startswith("memory://"):
        return InMemoryBus(service, topology)
    # aio-pika only where there is a broker (the embedded mode never loads it).
    from kubeserve_common.messaging.rabbitmq import RabbitMQBus

    return RabbitMQBus(
        settings.broker_url,
        service=service,
        topology=topology,
        publish_timeout=settings.publish_timeout,
    )


@dataclass
class Consumer:
    subscription: Subscription
    handler: Handler


@dataclass
class ServiceContainer:
    """The composition of one service. `start()` migrates, connects, starts relay + consumers;
    `consume=False` is for an HTTP-only process when a separate worker runs the consumers."""

    name: str
    settings: CommonSettings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    bus: EventBus
    relay: OutboxRelay
    uow: UnitOfWorkFactory
    migrations: Path
    consumers: list[Consumer] = field(default_factory=list)
    extra_checks: dict[str, Callable[[], Awaitable[None]]] = field(default_factory=dict)
    on_stop: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    owns_bus: bool = True
    started: bool = False
    # The checks that gate readiness (`/readyz` 503): what this service cannot do its job
    # without. The broker is never among them - the outbox holds events while it is away - and
    # the gateway needs none (it serves predictions from its route table). The others are
    # reported, and `/readyz` says "degraded" while one fails.
    ready_requires: frozenset[str] = frozenset({"database"})

    def parts(self) -> dict[str, Any]:
        """The common parts, to build a service's own container from the one `build_container()`
        made: `RegistryContainer(**base.parts(), store=..., models=...)`. Each service's
        container is a `@dataclass(kw_only=True)` subclass whose own fields are all required, so
        nothing is ever a `None` placeholder filled in later."""
        return {f.name: getattr(self, f.name) for f in fields(ServiceContainer)}

    @property
    def topology(self) -> Topology:
        return Topology(self.settings.bus_prefix)

    def subscribe(
        self, purpose: str, event_types: Sequence[str], handler: Handler, **kw: Any
    ) -> None:
        queue = self.topology.queue(self.name, purpose)
        self.consumers.append(Consumer(Subscription(queue, tuple(event_types), **kw), handler))

    async def start(self, *, consume: bool = True, relay: bool = True) -> None:
        if self.settings.migrate_on_start:
            await upgrade(self.migrations, self.settings.database_url, self.name)
        if self.owns_bus:
            await self.bus.connect()
        if relay:
            self.relay.start()
        if consume:
            for consumer in self.consumers:
                await self.bus.subscribe(consumer.subscription, consumer.handler)
        self.started = True
        log.info("service started", extra={"consumers": len(self.consumers) if consume else 0})

    async def stop(self) -> None:
        await self.relay.stop()
        for hook in reversed(self.on_stop):
            await hook()
        if self.owns_bus:
            await self.bus.close()
        await self.engine.dispose()
        self.started = False

    def is_ready(self, checks: dict[str, str]) -> bool:
        return self.started and all(checks.get(name) == "ok" for name in self.ready_requires)

    async def readiness(self) -> dict[str, str]:
        """Each dependency's state: "ok" or the reason it is not."""
        checks: dict[str, str] = {}
        try:
            await ping(self.engine, self.settings.db_timeout)
            checks["database"] = "ok"
        except Exception as exc:
            checks["database"] = f"unreachable: {type(exc).__name__}"
        try:
            ok = await asyncio.wait_for(self.bus.healthy(), self.settings.db_timeout)
            checks["broker"] = "ok" if ok else "disconnected"
        except Exception as exc:
            checks["broker"] = f"unreachable: {type(exc).__name__}"
        for name, check in self.extra_checks.items():
            try:
                await asyncio.wait_for(check(), self.settings.db_timeout)
                checks[name] = "ok"
            except Exception as exc:
                checks[name] = f"failing: {type(exc).__name__}"
        return checks


def build_container(
    name: str,
    settings: CommonSettings,
    migrations: Path,
    *,
    bus: EventBus | None = None,
) -> ServiceContainer:
    """The common half of every service's `bootstrap()`; a shared `bus` (embedded mode, tests)
    is used but not connected or closed by this container."""
    engine = create_engine(settings.database_url, name)
    sessions = create_session_factory(engine)
    the_bus = bus or create_bus(settings, name)
    relay = OutboxRelay(
        sessions,
        the_bus,
        service=name,
        batch_size=settings.outbox_batch_size,
        poll_interval=settings.outbox_poll_interval,
        idle_interval=settings.outbox_idle_interval,
    )
    return ServiceContainer(
        name=name,
        settings=settings,
        engine=engine,
        sessions=sessions,
        bus=the_bus,
        relay=relay,
        uow=UnitOfWorkFactory(sessions, relay.wake, notify=notify_channel(name)),
        migrations=migrations,
        owns_bus=bus is None,
    )
