"""Helpers for tests that talk to the auth service: settings with cheap hashing, what the
gateway sends (principal header, internal token), and small HTTP shortcuts. Test-only."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from kubeserve_common.security.principal import Principal, encode_principal
from kubeserve_common.security.tokens import issue_internal_token
from kubeserve_common.testing import TEST_INTERNAL_SECRET

from kubeserve_auth.settings import AuthSettings

PASSWORD = "correct-Horse-battery-9"  # noqa: S105 - a test fixture
# Cheap argon2 for speed; accepted only in dev mode. Production defaults are covered by
# libs/common/tests/test_passwords.py and the settings tests.
CHEAP_ARGON2: dict[str, Any] = {
    "password_time_cost": 1,
    "password_memory_kib": 1024,
    "password_parallelism": 1,
}


def make_settings(**overrides: Any) -> AuthSettings:
    values: dict[str, Any] = {
        "dev_mode": True,
        "internal_secret": TEST_INTERNAL_SECRET,
        "outbox_poll_interval": 0.2,
        **CHEAP_ARGON2,
    }
    values.update(overrides)
    return AuthSettings(**values)


def principal_headers(
    user_id: str | uuid.UUID,
    role: str = "user",
    *,
    auth: str = "token",
    api_key_id: uuid.UUID | None = None,
    secret: str = TEST_INTERNAL_SECRET,
) -> dict[str, str]:
    """What the gateway sends after verifying a caller."""
    principal = Principal(
        user_id=uuid.UUID(str(user_id)),
        role=role,  # type: ignore[arg-type]
        auth=auth,  # type: ignore[arg-type]
        api_key_id=api_key_id,
    )
    return {"x-kubeserve-principal": encode_principal(principal, secret)}


def gateway_headers(secret: str = TEST_INTERNAL_SECRET) -> dict[str, str]:
    token = issue_internal_token(secret, subject="service:gateway", claims={})
    return {"authorization": f"Bearer {token}"}


def unique_email(tag: str = "user") -> str:
    return f"{tag}-{uuid.uuid4().hex[:10]}@example.com"


async def register(
    client: httpx.AsyncClient, email: str | None = None, password: str = PASSWORD
) -> dict[str, Any]:
    response = await client.post(
        "/auth/register", json={"email": email or unique_email(), "password": password}
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def login(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> dict[str, Any]:
    response = await client.post("/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    return dict(response.json())


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code, body
    return dict(body["error"])
