"""Issue 15 item 7 end to end: disabling or deleting a user and revoking an API key reach every
gateway by event, not after a cache or token TTL. The real auth service and two real gateway
processes' worth of apps (each with its own transient queue) on uvicorn over PostgreSQL and
RabbitMQ; a named test double (the gateway's echo upstream) stands in for the registry and
deployer."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from kubeserve_auth.bootstrap import bootstrap as auth_bootstrap
from kubeserve_auth.main import create_app as auth_create_app
from kubeserve_auth.testing import PASSWORD, make_settings, unique_email
from kubeserve_common.events.topology import Topology
from kubeserve_common.testing import TEST_INTERNAL_SECRET
from kubeserve_common.testing.plugin import delete_topology
from kubeserve_common.testing.servers import serve_app
from kubeserve_common.testing.waiting import wait_until
from kubeserve_gateway.bootstrap import bootstrap as gateway_bootstrap
from kubeserve_gateway.main import create_app as gateway_create_app
from kubeserve_gateway.settings import GatewaySettings
from kubeserve_gateway.testing import echo_upstream_app

# The caches are long on purpose: only the events can make the gateways refuse in time.
LONG_CACHES = {"token_cache_ttl": 600.0, "api_key_cache_ttl": 600.0, "api_key_max_stale": 600.0}


@pytest.fixture
def admin_email() -> str:
    return unique_email("root")


@pytest.fixture
def auth_url(
    database_url: str, amqp_url: str, bus_prefix: str, tmp_path: Path, admin_email: str
) -> Iterator[str]:
    settings = make_settings(
        database_url=database_url,
        broker_url=amqp_url,
        bus_prefix=bus_prefix,
        home=tmp_path / "auth-home",
        admin_emails=admin_email,
    )
    with serve_app(auth_create_app(auth_bootstrap(settings))) as url:
        yield url


@pytest.fixture
async def gateways(
    auth_url: str, database_url: str, amqp_url: str, bus_prefix: str, tmp_path: Path
) -> AsyncIterator[list[httpx.AsyncClient]]:
    """Two gateways in front of the same auth (as two pods would be)."""
    with serve_app(echo_upstream_app()) as echo_url, contextlib.ExitStack() as stack:
        clients: list[httpx.AsyncClient] = []
        async with contextlib.AsyncExitStack() as astack:
            for n in range(2):
                settings = GatewaySettings(
                    dev_mode=True,
                    internal_secret=TEST_INTERNAL_SECRET,
                    home=tmp_path / f"gateway-{n}",
                    database_url=database_url,
                    broker_url=amqp_url,
                    bus_prefix=bus_prefix,
                    auth_url=auth_url,
                    registry_url=echo_url,
                    deployer_url=echo_url,
                    builder_url=echo_url,
                    **LONG_CACHES,
                )
                url = stack.enter_context(
                    serve_app(gateway_create_app(gateway_bootstrap(settings)))
                )
                clients.append(
                    await astack.enter_async_context(httpx.AsyncClient(base_url=url, timeout=30))
                )
            yield clients
    await delete_topology(amqp_url, Topology(bus_prefix), set())


async def signup(client: httpx.AsyncClient, email: str | None = None) -> tuple[str, str]:
    """Register and log in through a gateway: (user id, access token)."""
    email = email or unique_email("e2e")
    r = await client.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
    assert r.status_code == 201, r.text
    return r.json()["id"], await login(client, email)


async def login(client: httpx.AsyncClient, email: str) -> str:
    r = await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


async def status_of(client: httpx.AsyncClient, headers: dict[str, str]) -> int:
    """A call the gateway authenticates and then proxies to the echo (no auth round trip)."""
    return (await client.get("/api/v1/models", headers=headers)).status_code


async def refused_everywhere(gateways: list[httpx.AsyncClient], headers: dict[str, str]) -> None:
    async def all_refuse() -> bool:
        return {await status_of(g, headers) for g in gateways} == {401}

    await wait_until(all_refuse, timeout=15, message="every gateway refuses the credential")


async def test_a_disabled_users_token_is_refused_by_every_gateway_within_seconds(
    gateways: list[httpx.AsyncClient], admin_email: str
) -> None:
    first = gateways[0]
    _, admin_token = await signup(first, admin_email)
    victim_email = unique_email("victim")
    victim_id, token = await signup(first, victim_email)
    _, bystander_token = await signup(first)
    # Both gateways have verified (and cached) the victim's token.
    assert [await status_of(g, bearer(token)) for g in gateways] == [200, 200]

    r = await first.post(f"/api/v1/auth/users/{victim_id}/disable", headers=bearer(admin_token))
    assert r.status_code == 200, r.text
    await refused_everywhere(gateways, bearer(token))
    refused = await gateways[1].get("/api/v1/models", headers=bearer(token))
    assert refused.json()["error"]["code"] == "unauthorized"
    # Nobody else is affected.
    assert [await status_of(g, bearer(bystander_token)) for g in gateways] == [200, 200]

    # Re-enabled, the user logs in again: the new token works, the old one stays refused.
    r = await first.post(f"/api/v1/auth/users/{victim_id}/enable", headers=bearer(admin_token))
    assert r.status_code == 200
    # `iat` has whole seconds: a token issued within the disable's second is refused as if
    # older (the safe side), so the new login comes in a later second.
    await asyncio.sleep(1.1)
    fresh = await login(first, victim_email)
    assert fresh != token
    assert [await status_of(g, bearer(fresh)) for g in gateways] == [200, 200]
    assert [await status_of(g, bearer(token)) for g in gateways] == [401, 401]


async def test_a_revoked_key_stops_at_once_on_every_gateway(
    gateways: list[httpx.AsyncClient],
) -> None:
    first = gateways[0]
    _, token = await signup(first)
    r = await first.post("/api/v1/auth/api-keys", json={"name": "ci"}, headers=bearer(token))
    assert r.status_code == 201, r.text
    key_id, key = r.json()["id"], r.json()["key"]
    r = await first.post("/api/v1/auth/api-keys", json={"name": "other"}, headers=bearer(token))
    other_key = r.json()["key"]
    for secret in (key, other_key):
        assert [await status_of(g, {"x-api-key": secret}) for g in gateways] == [200, 200]

    r = await first.delete(f"/api/v1/auth/api-keys/{key_id}", headers=bearer(token))
    assert r.status_code == 204
    await refused_everywhere(gateways, {"x-api-key": key})
    # The owner's other key and session keep working.
    assert [await status_of(g, {"x-api-key": other_key}) for g in gateways] == [200, 200]
    assert [await status_of(g, bearer(token)) for g in gateways] == [200, 200]


async def test_a_deleted_users_token_and_keys_are_refused_by_every_gateway(
    gateways: list[httpx.AsyncClient], admin_email: str
) -> None:
    first = gateways[0]
    _, admin_token = await signup(first, admin_email)
    victim_id, token = await signup(first)
    r = await first.post("/api/v1/auth/api-keys", json={"name": "k"}, headers=bearer(token))
    key = r.json()["key"]
    for headers in (bearer(token), {"x-api-key": key}):
        assert [await status_of(g, headers) for g in gateways] == [200, 200]

    r = await first.delete(f"/api/v1/auth/users/{victim_id}", headers=bearer(admin_token))
    assert r.status_code == 204, r.text
    await refused_everywhere(gateways, bearer(token))
    await refused_everywhere(gateways, {"x-api-key": key})
    # Hostile input through the gateway: a 422 naming the problem, and a 404 for a stranger.
    r = await first.delete("/api/v1/auth/users/not-a-uuid", headers=bearer(admin_token))
    assert r.status_code == 422 and r.json()["error"]["message"]
    r = await first.delete(f"/api/v1/auth/users/{victim_id}", headers=bearer(admin_token))
    assert r.status_code == 404
