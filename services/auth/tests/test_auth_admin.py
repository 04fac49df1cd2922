"""Roles: the first admin comes from KUBESERVE_ADMIN_EMAILS; admins list and disable accounts;
a disabled account loses refresh, login and API keys at once."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from kubeserve_auth.cli import set_role
from kubeserve_auth.testing import (
    PASSWORD,
    assert_error,
    gateway_headers,
    principal_headers,
    register,
    unique_email,
)


async def test_admin_lists_and_disables_users(serve: Callable[..., str]) -> None:
    admin_email = unique_email("boss")
    url = serve(admin_emails=f"someone@example.com, {admin_email.upper()}")
    async with httpx.AsyncClient(base_url=url, timeout=20) as client:
        admin = await register(client, admin_email)
        assert admin["role"] == "admin"
        victim_email = unique_email("victim")
        victim = await register(client, victim_email)
        assert victim["role"] == "user"
        others = [await register(client) for _ in range(3)]
        as_admin = principal_headers(admin["id"], "admin")

        page = await client.get("/auth/users?limit=2&offset=0", headers=as_admin)
        assert page.status_code == 200, page.text
        assert page.json()["total"] == 5 and len(page.json()["items"]) == 2
        rest = (await client.get("/auth/users?limit=10&offset=2", headers=as_admin)).json()
        ids = {u["id"] for u in page.json()["items"]} | {u["id"] for u in rest["items"]}
        assert ids == {admin["id"], victim["id"], *(o["id"] for o in others)}

        # The victim has a session and an API key before being disabled.
        tokens = (
            await client.post("/auth/login", json={"email": victim_email, "password": PASSWORD})
        ).json()
        key = (
            await client.post(
                "/auth/api-keys", json={"name": "k"}, headers=principal_headers(victim["id"])
            )
        ).json()["key"]

        disabled = await client.post(f"/auth/users/{victim['id']}/disable", headers=as_admin)
        assert disabled.status_code == 200 and disabled.json()["disabled"] is True

        refresh = await client.post(
            "/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
        )
        assert_error(refresh, 401)
        resolve = await client.post(
            "/internal/api-keys/resolve", json={"api_key": key}, headers=gateway_headers()
        )
        assert_error(resolve, 401, "invalid_api_key")
        login = await client.post("/auth/login", json={"email": victim_email, "password": PASSWORD})
        unknown = await client.post(
            "/auth/login", json={"email": unique_email(), "password": PASSWORD}
        )
        assert login.status_code == 401 and login.json() == unknown.json()
        assert_error(await client.get("/auth/me", headers=principal_headers(victim["id"])), 401)

        enabled = await client.post(f"/auth/users/{victim['id']}/enable", headers=as_admin)
        assert enabled.status_code == 200 and enabled.json()["disabled"] is False
        again = await client.post("/auth/login", json={"email": victim_email, "password": PASSWORD})
        assert again.status_code == 200
        # The old session stays dead: disabling revoked it for good.
        old = await client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
        assert_error(old, 401)


async def test_non_admins_are_refused(client: httpx.AsyncClient) -> None:
    user = await register(client)
    other = await register(client)
    as_user = principal_headers(user["id"])
    assert_error(await client.get("/auth/users", headers=as_user), 403, "forbidden")
    assert_error(await client.post(f"/auth/users/{other['id']}/disable", headers=as_user), 403)
    # A role claim in the principal is not enough for an API key caller either.
    as_key = principal_headers(user["id"], "admin", auth="api_key", api_key_id=uuid.uuid4())
    assert_error(await client.get("/auth/users", headers=as_key), 403)
    assert_error(await client.get("/auth/users"), 401)


async def test_admin_cannot_disable_self_and_unknown_users_are_404(
    serve: Callable[..., str],
) -> None:
    email = unique_email("root")
    url = serve(admin_emails=email)
    async with httpx.AsyncClient(base_url=url, timeout=20) as client:
        admin = await register(client, email)
        as_admin = principal_headers(admin["id"], "admin")
        assert_error(await client.post(f"/auth/users/{admin['id']}/disable", headers=as_admin), 409)
        missing = await client.post(f"/auth/users/{uuid.uuid4()}/disable", headers=as_admin)
        assert_error(missing, 404)


async def test_operators_promote_an_existing_account_from_the_cli(
    client: httpx.AsyncClient,
    settings_factory: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    email = unique_email("later-admin")
    user = await register(client, email)
    settings = settings_factory()
    for name in ("database_url", "broker_url", "home"):
        monkeypatch.setenv(f"KUBESERVE_{name.upper()}", str(getattr(settings, name)))
    monkeypatch.setenv("KUBESERVE_DEV_MODE", "true")

    assert await asyncio.to_thread(set_role, [email.upper(), "admin"]) == 0
    assert "is now admin" in capsys.readouterr().out
    listed = await client.get("/auth/users", headers=principal_headers(user["id"], "admin"))
    assert listed.status_code == 200
    assert await asyncio.to_thread(set_role, ["nobody@example.com", "admin"]) == 1
