"""API keys: create (secret shown once), list without secrets, revoke, resolve for the gateway,
expiry, scope and tenant isolation."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
from kubeserve_auth.testing import (
    assert_error,
    gateway_headers,
    principal_headers,
    register,
)
from kubeserve_common.security.principal import Principal, encode_principal
from kubeserve_common.testing import TEST_INTERNAL_SECRET
from kubeserve_common.testing.waiting import wait_until


async def resolve(client: httpx.AsyncClient, key: str) -> httpx.Response:
    return await client.post(
        "/internal/api-keys/resolve", json={"api_key": key}, headers=gateway_headers()
    )


async def test_create_list_resolve_revoke(client: httpx.AsyncClient) -> None:
    user = await register(client)
    me = principal_headers(user["id"])
    created = await client.post("/auth/api-keys", json={"name": "ci"}, headers=me)
    assert created.status_code == 201, created.text
    key = created.json()
    secret = key["key"]
    assert secret.startswith("ks_") and len(secret) > 40
    assert secret.startswith(key["prefix"]) and key["prefix"] != secret
    assert key["deployment_ids"] is None and key["revoked_at"] is None

    listed = await client.get("/auth/api-keys", headers=me)
    assert listed.status_code == 200
    assert secret not in listed.text
    [item] = listed.json()
    assert item["id"] == key["id"] and item["name"] == "ci" and item["prefix"] == key["prefix"]
    assert "key" not in item

    resolved = await resolve(client, secret)
    assert resolved.status_code == 200, resolved.text
    assert resolved.json() == {
        "user_id": user["id"],
        "role": "user",
        "api_key_id": key["id"],
        "deployment_ids": None,
        "rate_limit": None,
    }
    used = (await client.get("/auth/api-keys", headers=me)).json()[0]
    assert used["last_used_at"] is not None

    assert (await client.delete(f"/auth/api-keys/{key['id']}", headers=me)).status_code == 204
    assert_error(await resolve(client, secret), 401, "invalid_api_key")
    revoked = (await client.get("/auth/api-keys", headers=me)).json()[0]
    assert revoked["revoked_at"] is not None
    # Revoking again is harmless.
    assert (await client.delete(f"/auth/api-keys/{key['id']}", headers=me)).status_code == 204


async def test_scoped_key_resolves_to_its_deployments(client: httpx.AsyncClient) -> None:
    user = await register(client)
    deployments = [str(uuid.uuid4()), str(uuid.uuid4())]
    created = await client.post(
        "/auth/api-keys",
        json={"name": "one model", "deployment_ids": [*deployments, deployments[0]]},
        headers=principal_headers(user["id"]),
    )
    assert created.status_code == 201, created.text
    assert created.json()["deployment_ids"] == sorted(deployments)
    resolved = (await resolve(client, created.json()["key"])).json()
    assert sorted(resolved["deployment_ids"]) == sorted(deployments)

    # The gateway turns that into a principal, which refuses other deployments.
    principal = Principal(
        user_id=uuid.UUID(resolved["user_id"]),
        auth="api_key",
        api_key_id=uuid.UUID(resolved["api_key_id"]),
        deployment_scope=frozenset(resolved["deployment_ids"]),
    )
    assert principal.can_use_deployment(deployments[0])
    assert not principal.can_use_deployment(uuid.uuid4())


async def test_another_tenants_key_is_not_found(client: httpx.AsyncClient) -> None:
    alice, mallory = await register(client), await register(client)
    key = (
        await client.post(
            "/auth/api-keys", json={"name": "alice's"}, headers=principal_headers(alice["id"])
        )
    ).json()
    stolen = await client.delete(
        f"/auth/api-keys/{key['id']}", headers=principal_headers(mallory["id"])
    )
    assert_error(stolen, 404, "not_found")
    assert (
        await client.get("/auth/api-keys", headers=principal_headers(mallory["id"]))
    ).json() == []
    assert (await resolve(client, key["key"])).status_code == 200
    missing = await client.delete(
        f"/auth/api-keys/{uuid.uuid4()}", headers=principal_headers(alice["id"])
    )
    assert_error(missing, 404)


async def test_expired_keys_stop_resolving(client: httpx.AsyncClient) -> None:
    user = await register(client)
    soon = (datetime.now(UTC) + timedelta(seconds=2)).isoformat()
    created = await client.post(
        "/auth/api-keys",
        json={"name": "short-lived", "expires_at": soon},
        headers=principal_headers(user["id"]),
    )
    assert created.status_code == 201, created.text
    secret = created.json()["key"]
    assert (await resolve(client, secret)).status_code == 200

    async def expired() -> bool:
        return (await resolve(client, secret)).status_code == 401

    await wait_until(expired, timeout=15, interval=0.2, message="the key to expire")
    week = await client.post(
        "/auth/api-keys",
        json={"name": "a week", "expires_in_days": 7},
        headers=principal_headers(user["id"]),
    )
    expires = datetime.fromisoformat(week.json()["expires_at"])
    assert timedelta(days=6) < expires - datetime.now(UTC) <= timedelta(days=7)


async def test_api_key_callers_cannot_manage_keys(client: httpx.AsyncClient) -> None:
    """A leaked (possibly scoped) key must not mint unscoped keys or revoke the others."""
    user = await register(client)
    key = (
        await client.post(
            "/auth/api-keys", json={"name": "k"}, headers=principal_headers(user["id"])
        )
    ).json()
    as_key = principal_headers(user["id"], auth="api_key", api_key_id=uuid.UUID(key["id"]))
    assert_error(await client.post("/auth/api-keys", json={"name": "x"}, headers=as_key), 403)
    assert_error(await client.get("/auth/api-keys", headers=as_key), 403)
    assert_error(await client.delete(f"/auth/api-keys/{key['id']}", headers=as_key), 403)
    # Reading one's own account is fine with a key.
    assert (await client.get("/auth/me", headers=as_key)).status_code == 200


async def test_resolve_is_for_services_only(client: httpx.AsyncClient) -> None:
    user = await register(client)
    secret = (
        await client.post(
            "/auth/api-keys", json={"name": "k"}, headers=principal_headers(user["id"])
        )
    ).json()["key"]
    body = {"api_key": secret}
    path = "/internal/api-keys/resolve"
    assert_error(await client.post(path, json=body), 401)
    assert_error(await client.post(path, json=body, headers={"authorization": "Bearer x.y.z"}), 401)
    wrong_secret = gateway_headers(secret="another-secret-entirely")
    assert_error(await client.post(path, json=body, headers=wrong_secret), 401)
    # A user's principal token is signed with the same secret but is not a service identity.
    user_token = encode_principal(Principal(user_id=uuid.UUID(user["id"])), TEST_INTERNAL_SECRET)
    as_user = {"authorization": f"Bearer {user_token}"}
    assert_error(await client.post(path, json=body, headers=as_user), 401)
    for bogus in ("ks_" + "a" * 43, "not-a-key", "ks_", "ks_" + "b" * 500):
        assert_error(await resolve(client, bogus), 401, "invalid_api_key")


async def test_a_key_carries_its_own_rate_limit_to_the_gateway(client: httpx.AsyncClient) -> None:
    user = await register(client)
    me = principal_headers(user["id"])
    body = {"name": "batch", "rate_limit": {"requests_per_second": 250, "burst": 1000}}
    created = await client.post("/auth/api-keys", json=body, headers=me)
    assert created.status_code == 201, created.text
    limit = {"requests_per_second": 250.0, "burst": 1000}
    assert created.json()["rate_limit"] == limit
    listed = (await client.get("/auth/api-keys", headers=me)).json()
    assert [k["rate_limit"] for k in listed] == [limit]
    resolved = await resolve(client, created.json()["key"])
    assert resolved.json()["rate_limit"] == limit

    # Without a burst: twice the rate. Without a limit: null (the gateway's default).
    body = {"name": "slow", "rate_limit": {"requests_per_second": 0.5}}
    slow = (await client.post("/auth/api-keys", json=body, headers=me)).json()
    assert slow["rate_limit"] == {"requests_per_second": 0.5, "burst": 1}
    plain = (await client.post("/auth/api-keys", json={"name": "p"}, headers=me)).json()
    assert plain["rate_limit"] is None
    assert (await resolve(client, plain["key"])).json()["rate_limit"] is None


async def test_nonsense_rate_limits_are_a_422_naming_the_field(client: httpx.AsyncClient) -> None:
    user = await register(client)
    me = principal_headers(user["id"])
    for bad in (
        {"requests_per_second": 0},
        {"requests_per_second": -3, "burst": 5},
        {"requests_per_second": 10, "burst": -1},
        {"requests_per_second": 10, "burst": 2.5},
        {"requests_per_second": 1e9},
        {"burst": 5},
        "fast",
    ):
        r = await client.post("/auth/api-keys", json={"name": "x", "rate_limit": bad}, headers=me)
        assert_error(r, 422)
        assert "rate_limit" in r.text, (bad, r.text)
    assert (await client.get("/auth/api-keys", headers=me)).json() == []
