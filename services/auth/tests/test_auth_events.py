"""`UserRegistered` leaves through the outbox and reaches RabbitMQ exactly once per user."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
from kubeserve_auth.testing import register, unique_email
from kubeserve_common.events import CloudEvent, UserRegistered
from kubeserve_common.events.topology import Topology
from kubeserve_common.messaging.bus import Subscription
from kubeserve_common.messaging.rabbitmq import RabbitMQBus
from kubeserve_common.testing.waiting import wait_until


async def test_user_registered_reaches_the_bus_once_per_user(
    serve: Callable[..., str],
    rabbit_bus_factory: Callable[..., RabbitMQBus],
    bus_prefix: str,
) -> None:
    observer = rabbit_bus_factory("observer")
    await observer.connect()
    received: list[CloudEvent] = []

    async def collect(event: CloudEvent) -> None:
        received.append(event)

    queue = Topology(bus_prefix).queue("observer", "users")
    await observer.subscribe(Subscription(queue, (UserRegistered.event_type(),)), collect)

    url = serve()
    async with httpx.AsyncClient(base_url=url, timeout=20) as client:
        users = [await register(client, unique_email(f"u{i}")) for i in range(3)]
        # A refused duplicate must not publish anything.
        duplicate = await client.post(
            "/auth/register", json={"email": users[0]["email"], "password": "Another-pass-1"}
        )
        assert duplicate.status_code == 409

    await wait_until(lambda: len(received) >= 3, message="three UserRegistered events")
    await asyncio.sleep(1.0)  # room for a duplicate to show up, if the relay sent one
    assert len(received) == 3
    assert len({e.id for e in received}) == 3
    by_user = {str(e.payload().user_id): e for e in received}  # type: ignore[attr-defined]
    assert set(by_user) == {u["id"] for u in users}
    for user in users:
        event = by_user[user["id"]]
        assert event.type == "io.kubeserve.user.registered.v1"
        assert event.source == "/kubeserve/auth"
        assert event.subject == f"users/{user['id']}"
        assert event.tenantid == user["id"]
        assert event.data["email"] == user["email"] and event.data["role"] == "user"
