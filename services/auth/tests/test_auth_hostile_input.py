"""Bad and hostile request bodies get a 4xx with the JSON error shape, never a 500."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from kubeserve_auth.testing import PASSWORD, assert_error, principal_headers, register, unique_email

JSON_CASES: list[tuple[str, Any, int]] = [
    ("/auth/register", {}, 422),
    ("/auth/register", {"email": "a@example.com"}, 422),
    ("/auth/register", {"email": 42, "password": PASSWORD}, 422),
    ("/auth/register", {"email": "a@example.com", "password": 1234567890123}, 422),
    ("/auth/register", {"email": ["a@example.com"], "password": PASSWORD}, 422),
    ("/auth/register", {"email": None, "password": None}, 422),
    ("/auth/register", [], 422),
    ("/auth/register", "just a string", 422),
    ("/auth/register", {"email": "nope", "password": PASSWORD}, 422),
    ("/auth/register", {"email": "a b@example.com", "password": PASSWORD}, 422),
    ("/auth/register", {"email": "ctrl\u0000x@example.com", "password": PASSWORD}, 422),
    ("/auth/register", {"email": "bell\u0007@example.com", "password": PASSWORD}, 422),
    ("/auth/register", {"email": "line\nbreak@example.com", "password": PASSWORD}, 422),
    ("/auth/register", {"email": "a@localhost", "password": PASSWORD}, 422),
    ("/auth/register", {"email": "a@@example.com", "password": PASSWORD}, 422),
    ("/auth/register", {"email": "x" * 400 + "@example.com", "password": PASSWORD}, 422),
    ("/auth/register", {"email": "ok@example.com", "password": "x" * 10_000}, 422),
    ("/auth/login", {}, 422),
    ("/auth/login", {"email": "a@example.com"}, 422),
    ("/auth/login", {"email": 1, "password": 2}, 422),
    ("/auth/login", {"email": "a@example.com", "password": "y" * 10_000}, 422),
    ("/auth/login", [1, 2], 422),
    ("/auth/refresh", {}, 422),
    ("/auth/refresh", {"refresh_token": 123}, 422),
    ("/auth/refresh", {"refresh_token": "z" * 5000}, 422),
    ("/auth/logout", {"refresh_token": None}, 422),
]


@pytest.mark.parametrize(("path", "body", "status"), JSON_CASES)
async def test_bad_json_bodies(
    client: httpx.AsyncClient, path: str, body: Any, status: int
) -> None:
    assert_error(await client.post(path, json=body), status)


@pytest.mark.parametrize("path", ["/auth/register", "/auth/login", "/auth/refresh"])
@pytest.mark.parametrize(
    "raw",
    [b"{not json", b"", b"\xff\xfe\x00garbage", b'{"email": "a@example.com", "password": '],
)
async def test_unparseable_bodies(client: httpx.AsyncClient, path: str, raw: bytes) -> None:
    response = await client.post(path, content=raw, headers={"content-type": "application/json"})
    assert 400 <= response.status_code < 500, response.text
    assert "error" in response.json()


async def test_oversized_bodies_are_refused(client: httpx.AsyncClient) -> None:
    huge = {"email": "a@example.com", "password": "p" * (200 * 1024)}
    for path in ("/auth/register", "/auth/login", "/auth/refresh"):
        assert_error(await client.post(path, json=huge), 413, "payload_too_large")


async def test_hostile_login_forms(client: httpx.AsyncClient) -> None:
    form = {"content-type": "application/x-www-form-urlencoded"}
    assert_error(await client.post("/auth/login", content=b"\xff\xff=\xff", headers=form), 400)
    assert_error(await client.post("/auth/login", content=b"username=a", headers=form), 422)
    wrong_grant = b"grant_type=client_credentials&username=a%40example.com&password=x"
    assert_error(await client.post("/auth/login", content=wrong_grant, headers=form), 400)


async def test_password_policy_explains_itself(client: httpx.AsyncClient) -> None:
    email = unique_email("policy")
    cases = {
        "Short1": "at least 10 characters",
        "onlylowercaseletters": "two kinds of characters",
        email: "must not be your email",
        "p" * 257 + "A": "at most 256 characters",
    }
    for password, fragment in cases.items():
        response = await client.post("/auth/register", json={"email": email, "password": password})
        error = assert_error(response, 422, "weak_password")
        assert fragment in error["message"], error
    # Nothing was stored by the refused attempts: the email is still free.
    await register(client, email)


async def test_wrongly_typed_api_key_bodies(client: httpx.AsyncClient) -> None:
    user = await register(client)
    headers = principal_headers(user["id"])
    for body in (
        {},
        {"name": ""},
        {"name": "   "},
        {"name": 5},
        {"name": "x" * 101},
        {"name": "ok", "deployment_ids": "all"},
        {"name": "ok", "deployment_ids": ["not-a-uuid"]},
        {"name": "ok", "deployment_ids": []},
        {"name": "ok", "expires_in_days": 0},
        {"name": "ok", "expires_in_days": "7"},
        {"name": "ok", "expires_at": "yesterday"},
        {"name": "ok", "expires_at": "2001-01-01T00:00:00Z"},
        {"name": "ok", "expires_at": "2999-01-01T00:00:00Z", "expires_in_days": 3},
        {"name": "bad\u0000name"},
    ):
        response = await client.post("/auth/api-keys", json=body, headers=headers)
        assert_error(response, 422)
    assert_error(await client.delete("/auth/api-keys/not-a-uuid", headers=headers), 422)
    assert_error(await client.get("/auth/users?limit=100000", headers=headers), 422)
