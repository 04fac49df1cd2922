"""Register, login (JSON and OAuth2 form), me, refresh rotation and logout, through real HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import asyncpg
import httpx
from kubeserve_auth.testing import (
    PASSWORD,
    assert_error,
    principal_headers,
    register,
    unique_email,
)
from kubeserve_common.security.tokens import (
    ACCESS_AUDIENCE,
    ACCESS_ISSUER,
    verification_keys,
    verify_access_token,
)


async def test_register_login_me_refresh_logout(client: httpx.AsyncClient) -> None:
    email = unique_email("Ada")
    user = await register(client, email.upper())
    assert user["email"] == email.lower()
    assert user["role"] == "user" and user["disabled"] is False
    assert "password" not in str(user) and "hash" not in str(user)

    tokens = (await client.post("/auth/login", json={"email": email, "password": PASSWORD})).json()
    assert tokens["token_type"] == "bearer"
    assert tokens["expires_in"] == 900
    assert tokens["refresh_token"] != tokens["access_token"]

    # The access token verifies against the published JWKS, as the gateway will do.
    jwks = (await client.get("/.well-known/jwks.json")).json()
    claims = verify_access_token(
        tokens["access_token"],
        verification_keys(jwks),
        issuer=ACCESS_ISSUER,
        audience=ACCESS_AUDIENCE,
    )
    assert claims["sub"] == user["id"] and claims["role"] == "user"

    me = await client.get("/auth/me", headers=principal_headers(user["id"]))
    assert me.status_code == 200
    assert me.json()["email"] == email.lower()

    rotated = await client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert rotated.status_code == 200, rotated.text
    pair = rotated.json()
    assert pair["refresh_token"] != tokens["refresh_token"]
    assert pair["access_token"] != tokens["access_token"]

    out = await client.post("/auth/logout", json={"refresh_token": pair["refresh_token"]})
    assert out.status_code == 204
    after = await client.post("/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert_error(after, 401, "invalid_refresh_token")
    # Logging out twice (or with garbage) is harmless.
    again = await client.post("/auth/logout", json={"refresh_token": pair["refresh_token"]})
    assert again.status_code == 204


async def test_login_accepts_the_oauth2_password_form(client: httpx.AsyncClient) -> None:
    email = unique_email()
    await register(client, email)
    response = await client.post(
        "/auth/login",
        data={"grant_type": "password", "username": email.upper(), "password": PASSWORD},
    )
    assert response.status_code == 200, response.text
    assert response.json()["token_type"] == "bearer"
    wrong = await client.post("/auth/login", data={"username": email, "password": "nope-nope-1"})
    assert_error(wrong, 401, "invalid_credentials")
    missing = await client.post("/auth/login", data={"username": email})
    assert_error(missing, 422, "validation_error")


async def test_me_requires_the_gateway_principal(client: httpx.AsyncClient) -> None:
    user = await register(client)
    assert_error(await client.get("/auth/me"), 401)
    forged = principal_headers(user["id"], secret="not-the-internal-secret")
    assert_error(await client.get("/auth/me", headers=forged), 401)


async def test_duplicate_email_is_refused_whatever_its_case(client: httpx.AsyncClient) -> None:
    email = unique_email("Dup")
    await register(client, email)
    again = await client.post(
        "/auth/register", json={"email": f"  {email.upper()} ", "password": PASSWORD}
    )
    assert_error(again, 409, "email_taken")


async def test_reusing_a_rotated_refresh_token_revokes_the_family(
    client: httpx.AsyncClient,
) -> None:
    email = unique_email()
    await register(client, email)
    first = (await client.post("/auth/login", json={"email": email, "password": PASSWORD})).json()
    other_session = (
        await client.post("/auth/login", json={"email": email, "password": PASSWORD})
    ).json()
    second = (
        await client.post("/auth/refresh", json={"refresh_token": first["refresh_token"]})
    ).json()

    # An attacker (or a confused client) replays the rotated token...
    replay = await client.post("/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert_error(replay, 401, "invalid_refresh_token")
    # ...and the legitimate successor is dead too: the whole family is revoked.
    successor = await client.post("/auth/refresh", json={"refresh_token": second["refresh_token"]})
    assert_error(successor, 401, "invalid_refresh_token")
    # Another login's session is a different family and lives on.
    unaffected = await client.post(
        "/auth/refresh", json={"refresh_token": other_session["refresh_token"]}
    )
    assert unaffected.status_code == 200


async def test_access_token_is_not_a_refresh_token(client: httpx.AsyncClient) -> None:
    email = unique_email()
    await register(client, email)
    tokens = (await client.post("/auth/login", json={"email": email, "password": PASSWORD})).json()
    response = await client.post("/auth/refresh", json={"refresh_token": tokens["access_token"]})
    assert_error(response, 401, "invalid_refresh_token")


async def test_concurrent_refreshes_with_one_token_never_fork_the_session(
    client: httpx.AsyncClient,
) -> None:
    email = unique_email()
    await register(client, email)
    tokens = (await client.post("/auth/login", json={"email": email, "password": PASSWORD})).json()
    body = {"refresh_token": tokens["refresh_token"]}
    responses = await asyncio.gather(*(client.post("/auth/refresh", json=body) for _ in range(4)))
    winners = [r for r in responses if r.status_code == 200]
    assert len(winners) <= 1
    assert all(r.status_code in (200, 401) for r in responses)
    # Whatever the interleaving, at most one live successor exists, and replays revoked it.
    for winner in winners:
        retry = await client.post(
            "/auth/refresh", json={"refresh_token": winner.json()["refresh_token"]}
        )
        assert retry.status_code == 401


async def test_login_rehashes_when_the_parameters_changed(
    serve: Callable[..., str], database_url: str
) -> None:
    email = unique_email()
    async with httpx.AsyncClient(base_url=serve(), timeout=20) as client:
        await register(client, email)
    before = await stored_hash(database_url, email)
    assert "$m=1024,t=1,p=1$" in before

    stronger = serve(password_time_cost=2, password_memory_kib=2048)
    async with httpx.AsyncClient(base_url=stronger, timeout=20) as client:
        assert (
            await client.post("/auth/login", json={"email": email, "password": PASSWORD})
        ).status_code == 200
        after = await stored_hash(database_url, email)
        assert "$m=2048,t=2,p=1$" in after
        # And the new hash still logs the user in.
        again = await client.post("/auth/login", json={"email": email, "password": PASSWORD})
        assert again.status_code == 200


async def stored_hash(database_url: str, email: str) -> str:
    conn = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        return str(
            await conn.fetchval("SELECT password_hash FROM auth.users WHERE email = $1", email)
        )
    finally:
        await conn.close()


async def test_openapi_documents_both_login_bodies(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    content = document["paths"]["/auth/login"]["post"]["requestBody"]["content"]
    assert {"application/json", "application/x-www-form-urlencoded"} <= set(content)
    assert "/internal/api-keys/resolve" in document["paths"]
