"""What a login attacker sees: one generic answer for every failure, and backoff per account."""

from __future__ import annotations

from collections.abc import Callable

import httpx
from kubeserve_auth.testing import PASSWORD, assert_error, register, unique_email
from kubeserve_common.testing.waiting import wait_until


async def test_unknown_email_and_wrong_password_get_the_same_answer(
    client: httpx.AsyncClient,
) -> None:
    email = unique_email()
    await register(client, email)
    wrong = await client.post("/auth/login", json={"email": email, "password": "Wrong-pass-1"})
    unknown = await client.post(
        "/auth/login", json={"email": unique_email("nobody"), "password": "Wrong-pass-1"}
    )
    not_an_email = await client.post(
        "/auth/login", json={"email": "not-an-email", "password": "Wrong-pass-1"}
    )
    with_nul = await client.post(
        "/auth/login", json={"email": "nul\u0000@example.com", "password": "Wrong-pass-1"}
    )
    statuses = {
        wrong.status_code,
        unknown.status_code,
        not_an_email.status_code,
        with_nul.status_code,
    }
    assert statuses == {401}
    assert wrong.json() == unknown.json() == not_an_email.json() == with_nul.json()
    assert_error(wrong, 401, "invalid_credentials")


async def test_repeated_failures_back_off_per_account(serve: Callable[..., str]) -> None:
    url = serve(login_failures_before_backoff=3, login_backoff_base_seconds=1)
    async with httpx.AsyncClient(base_url=url, timeout=20) as client:
        email, bystander = unique_email("victim"), unique_email("bystander")
        await register(client, email)
        await register(client, bystander)
        for _ in range(3):
            failed = await client.post(
                "/auth/login", json={"email": email, "password": "bad-Guess-1"}
            )
            assert_error(failed, 401, "invalid_credentials")

        # Locked: even the right password is refused for now, with the same generic message.
        locked = await client.post("/auth/login", json={"email": email, "password": PASSWORD})
        error = assert_error(locked, 429, "invalid_credentials")
        assert error["message"].startswith("invalid email or password")
        assert int(locked.headers["retry-after"]) >= 1
        # Other accounts are unaffected.
        ok = await client.post("/auth/login", json={"email": bystander, "password": PASSWORD})
        assert ok.status_code == 200

        # Once the backoff has passed, the right password works and resets the count.
        async def unlocked() -> bool:
            response = await client.post("/auth/login", json={"email": email, "password": PASSWORD})
            return response.status_code == 200

        await wait_until(unlocked, timeout=15, interval=0.3, message="the backoff to expire")
        again = await client.post("/auth/login", json={"email": email, "password": "bad-Guess-1"})
        assert_error(again, 401, "invalid_credentials")


async def test_unknown_emails_back_off_too(serve: Callable[..., str]) -> None:
    """Otherwise a 429 would tell an attacker which accounts exist."""
    url = serve(login_failures_before_backoff=2)
    async with httpx.AsyncClient(base_url=url, timeout=20) as client:
        ghost = unique_email("ghost")
        for _ in range(2):
            failed = await client.post(
                "/auth/login", json={"email": ghost, "password": "x-Guess-1"}
            )
            assert_error(failed, 401)
        locked = await client.post("/auth/login", json={"email": ghost, "password": "x-Guess-1"})
        assert_error(locked, 429, "invalid_credentials")
