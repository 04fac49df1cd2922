"""Issue 15 item 7, auth's side: an administrator deletes an account (its keys and sessions go
with it), and every revocation - delete, disable, API-key revoke - leaves through the outbox as
one event on RabbitMQ, once."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

import httpx
from kubeserve_auth.testing import (
    PASSWORD,
    assert_error,
    gateway_headers,
    login,
    principal_headers,
    register,
    unique_email,
)
from kubeserve_common.events import ApiKeyRevoked, CloudEvent, UserDeleted, UserDisabled
from kubeserve_common.events.topology import Topology
from kubeserve_common.messaging.bus import Subscription
from kubeserve_common.messaging.rabbitmq import RabbitMQBus
from kubeserve_common.testing.waiting import wait_until

REVOCATIONS = (
    UserDeleted.event_type(),
    UserDisabled.event_type(),
    ApiKeyRevoked.event_type(),
)


async def _observe(
    rabbit_bus_factory: Callable[..., RabbitMQBus], bus_prefix: str
) -> list[CloudEvent]:
    observer = rabbit_bus_factory("observer")
    await observer.connect()
    received: list[CloudEvent] = []

    async def collect(event: CloudEvent) -> None:
        received.append(event)

    queue = Topology(bus_prefix).queue("observer", "revocations")
    await observer.subscribe(Subscription(queue, REVOCATIONS), collect)
    return received


async def test_admin_deletes_a_user_with_keys_and_sessions_and_one_event_goes_out(
    serve: Callable[..., str],
    rabbit_bus_factory: Callable[..., RabbitMQBus],
    bus_prefix: str,
) -> None:
    received = await _observe(rabbit_bus_factory, bus_prefix)
    admin_email = unique_email("root")
    url = serve(admin_emails=admin_email)
    async with httpx.AsyncClient(base_url=url, timeout=20) as client:
        admin = await register(client, admin_email)
        as_admin = principal_headers(admin["id"], "admin")
        victim_email = unique_email("victim")
        victim = await register(client, victim_email)
        bystander = await register(client)
        tokens = await login(client, victim_email)
        key = (
            await client.post(
                "/auth/api-keys", json={"name": "k"}, headers=principal_headers(victim["id"])
            )
        ).json()["key"]

        deleted = await client.delete(f"/auth/users/{victim['id']}", headers=as_admin)
        assert deleted.status_code == 204, deleted.text

        listed = (await client.get("/auth/users?limit=50", headers=as_admin)).json()
        assert {u["id"] for u in listed["items"]} == {admin["id"], bystander["id"]}
        resolve = await client.post(
            "/internal/api-keys/resolve", json={"api_key": key}, headers=gateway_headers()
        )
        assert_error(resolve, 401, "invalid_api_key")
        refresh = await client.post(
            "/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
        )
        assert_error(refresh, 401)
        again = await client.post("/auth/login", json={"email": victim_email, "password": PASSWORD})
        assert again.status_code == 401
        assert_error(await client.get("/auth/me", headers=principal_headers(victim["id"])), 401)
        # A second delete finds nothing and publishes nothing.
        assert_error(await client.delete(f"/auth/users/{victim['id']}", headers=as_admin), 404)
        # The address is free again: a new account, another id.
        reborn = await register(client, victim_email)
        assert reborn["id"] != victim["id"]

    await wait_until(lambda: len(received) >= 1, message="UserDeleted on the bus")
    await asyncio.sleep(1.0)  # room for a duplicate, if the relay sent one
    assert [e.type for e in received] == [UserDeleted.event_type()]
    event = received[0]
    assert event.data == {"user_id": victim["id"]}
    assert event.subject == f"users/{victim['id']}" and event.tenantid == victim["id"]
    assert event.source == "/kubeserve/auth"


async def test_deleting_is_admin_only_and_hostile_input_is_a_4xx(
    serve: Callable[..., str],
    rabbit_bus_factory: Callable[..., RabbitMQBus],
    bus_prefix: str,
) -> None:
    received = await _observe(rabbit_bus_factory, bus_prefix)
    admin_email = unique_email("root")
    url = serve(admin_emails=admin_email)
    async with httpx.AsyncClient(base_url=url, timeout=20) as client:
        admin = await register(client, admin_email)
        user = await register(client)
        other = await register(client)
        as_admin = principal_headers(admin["id"], "admin")

        as_user = principal_headers(user["id"])
        assert_error(await client.delete(f"/auth/users/{other['id']}", headers=as_user), 403)
        # An admin's API key is not an interactive login.
        as_key = principal_headers(admin["id"], "admin", auth="api_key", api_key_id=uuid.uuid4())
        assert_error(await client.delete(f"/auth/users/{other['id']}", headers=as_key), 403)
        assert_error(await client.delete(f"/auth/users/{other['id']}"), 401)
        # A token still claiming admin after a demotion does not count: the stored role decides.
        forged = principal_headers(user["id"], "admin")
        assert_error(await client.delete(f"/auth/users/{other['id']}", headers=forged), 403)

        assert_error(await client.delete("/auth/users/not-a-uuid", headers=as_admin), 422)
        assert_error(await client.delete(f"/auth/users/{uuid.uuid4()}", headers=as_admin), 404)
        own = await client.delete(f"/auth/users/{admin['id']}", headers=as_admin)
        assert_error(own, 409)

        names = (await client.get("/auth/users", headers=as_admin)).json()["items"]
        assert {u["id"] for u in names} == {admin["id"], user["id"], other["id"]}

    await asyncio.sleep(1.0)
    assert received == []  # nothing refused published anything


async def test_disable_and_key_revoke_publish_once_each(
    serve: Callable[..., str],
    rabbit_bus_factory: Callable[..., RabbitMQBus],
    bus_prefix: str,
) -> None:
    received = await _observe(rabbit_bus_factory, bus_prefix)
    admin_email = unique_email("root")
    url = serve(admin_emails=admin_email)
    async with httpx.AsyncClient(base_url=url, timeout=20) as client:
        admin = await register(client, admin_email)
        as_admin = principal_headers(admin["id"], "admin")
        user = await register(client)
        as_user = principal_headers(user["id"])
        created = (await client.post("/auth/api-keys", json={"name": "k"}, headers=as_user)).json()
        for _ in range(2):  # the second revoke is a no-op, not a second event
            revoked = await client.delete(f"/auth/api-keys/{created['id']}", headers=as_user)
            assert revoked.status_code == 204
        for _ in range(2):  # disabling a disabled account changes nothing
            disabled = await client.post(f"/auth/users/{user['id']}/disable", headers=as_admin)
            assert disabled.status_code == 200
        enabled = await client.post(f"/auth/users/{user['id']}/enable", headers=as_admin)
        assert enabled.status_code == 200

    await wait_until(lambda: len(received) >= 2, message="ApiKeyRevoked and UserDisabled")
    await asyncio.sleep(1.0)
    by_type = {e.type: e for e in received}
    assert len(received) == 2 and set(by_type) == {
        ApiKeyRevoked.event_type(),
        UserDisabled.event_type(),
    }
    assert by_type[ApiKeyRevoked.event_type()].data == {
        "api_key_id": created["id"],
        "user_id": user["id"],
    }
    assert by_type[UserDisabled.event_type()].data == {"user_id": user["id"]}
    assert by_type[UserDisabled.event_type()].tenantid == user["id"]
