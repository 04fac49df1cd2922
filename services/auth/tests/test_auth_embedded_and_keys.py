"""The embedded path (SQLite + in-process bus) and where signing keys come from."""

from __future__ import annotations

import stat
from pathlib import Path

import httpx
import pytest
from kubeserve_auth.adapters.signing_keys import load_key_ring
from kubeserve_auth.bootstrap import bootstrap
from kubeserve_auth.main import create_app
from kubeserve_auth.settings import AuthSettings
from kubeserve_auth.testing import (
    PASSWORD,
    gateway_headers,
    make_settings,
    principal_headers,
    unique_email,
)
from kubeserve_common.events import CloudEvent, UserRegistered
from kubeserve_common.events.topology import Topology
from kubeserve_common.messaging.bus import Subscription
from kubeserve_common.messaging.memory import InMemoryBus
from kubeserve_common.security.tokens import (
    ACCESS_AUDIENCE,
    ACCESS_ISSUER,
    SigningKey,
    verification_keys,
    verify_access_token,
)
from kubeserve_common.testing.servers import serve_app
from kubeserve_common.testing.waiting import wait_until


async def test_embedded_mode_on_sqlite_and_the_memory_bus(tmp_path: Path) -> None:
    settings = make_settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/auth.db",
        broker_url="memory://",
        home=tmp_path,
    )
    with serve_app(create_app(bootstrap(settings))) as url:
        async with httpx.AsyncClient(base_url=url, timeout=20) as client:
            email = unique_email()
            created = await client.post(
                "/auth/register", json={"email": email, "password": PASSWORD}
            )
            assert created.status_code == 201, created.text
            dup = await client.post(
                "/auth/register", json={"email": email.upper(), "password": PASSWORD}
            )
            assert dup.status_code == 409
            tokens = await client.post("/auth/login", json={"email": email, "password": PASSWORD})
            assert tokens.status_code == 200, tokens.text
            rotated = await client.post(
                "/auth/refresh", json={"refresh_token": tokens.json()["refresh_token"]}
            )
            assert rotated.status_code == 200, rotated.text
            user_id = created.json()["id"]
            key = await client.post(
                "/auth/api-keys", json={"name": "k"}, headers=principal_headers(user_id)
            )
            assert key.status_code == 201, key.text
            resolved = await client.post(
                "/internal/api-keys/resolve",
                json={"api_key": key.json()["key"]},
                headers=gateway_headers(),
            )
            assert resolved.json()["user_id"] == user_id
            for _ in range(6):
                await client.post("/auth/login", json={"email": email, "password": "Wrong-pass-1"})
            throttled = await client.post(
                "/auth/login", json={"email": email, "password": PASSWORD}
            )
            assert throttled.status_code == 429
    assert (tmp_path / "auth.db").exists()


async def test_the_embedded_runner_wiring_delivers_user_registered(tmp_path: Path) -> None:
    """As `kubeserve up` does it: a shared in-process bus, the container started by the runner
    (`manage_container=False`), the app served separately."""
    bus = InMemoryBus("embedded")
    await bus.connect()
    received: list[CloudEvent] = []

    async def collect(event: CloudEvent) -> None:
        received.append(event)

    await bus.subscribe(
        Subscription(Topology().queue("deployer", "users"), (UserRegistered.event_type(),)),
        collect,
    )
    settings = make_settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/db/auth.db",
        broker_url="memory://",
        home=tmp_path,
    )
    container = bootstrap(settings, bus=bus)
    app = create_app(container, manage_container=False)
    await container.start()
    try:
        with serve_app(app) as url:
            async with httpx.AsyncClient(base_url=url, timeout=20) as client:
                ids = []
                for i in range(2):
                    response = await client.post(
                        "/auth/register",
                        json={"email": unique_email(f"e{i}"), "password": PASSWORD},
                    )
                    assert response.status_code == 201, response.text
                    ids.append(response.json()["id"])
        await wait_until(lambda: len(received) >= 2, message="UserRegistered on the memory bus")
        assert sorted(e.tenantid or "" for e in received) == sorted(ids)
    finally:
        await container.stop()
        await bus.close()


async def test_dev_key_is_generated_once_and_kept_private(tmp_path: Path) -> None:
    settings = make_settings(home=tmp_path)
    first, second = load_key_ring(settings), load_key_ring(settings)
    assert first.current.kid == second.current.kid
    path = tmp_path / "auth" / "jwt-signing-key.pem"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [k["kid"] for k in first.jwks()["keys"]] == [first.current.kid]


async def test_rotation_publishes_the_previous_key(tmp_path: Path) -> None:
    old, new = SigningKey.generate(), SigningKey.generate()
    settings = make_settings(
        home=tmp_path, jwt_private_key=new.private_pem, jwt_previous_private_key=old.private_pem
    )
    ring = load_key_ring(settings)
    document = ring.jwks()
    assert [k["kid"] for k in document["keys"]] == [new.kid, old.kid]
    assert all("d" not in k for k in document["keys"])
    assert not (tmp_path / "auth").exists(), "a configured key must not create a dev key"
    # A token signed before the rotation still verifies against the published set.
    from kubeserve_common.security.tokens import issue_access_token

    token = issue_access_token(
        old, subject="u", issuer=ACCESS_ISSUER, audience=ACCESS_AUDIENCE, ttl_seconds=60
    )
    claims = verify_access_token(
        token, verification_keys(document), issuer=ACCESS_ISSUER, audience=ACCESS_AUDIENCE
    )
    assert claims["sub"] == "u"


def test_production_settings_refuse_to_start_without_a_key() -> None:
    with pytest.raises(ValueError, match="KUBESERVE_JWT_PRIVATE_KEY is not set"):
        AuthSettings(dev_mode=False, internal_secret="a-real-internal-secret-1234")
    key = SigningKey.generate().private_pem
    with pytest.raises(ValueError, match="below OWASP"):
        AuthSettings(
            dev_mode=False,
            internal_secret="a-real-internal-secret-1234",
            jwt_private_key=key,
            password_memory_kib=1024,
            password_time_cost=1,
        )
    ok = AuthSettings(
        dev_mode=False, internal_secret="a-real-internal-secret-1234", jwt_private_key=key
    )
    assert ok.password_params.meets_owasp_minimum()
    assert (ok.password_time_cost, ok.password_memory_kib, ok.password_parallelism) == (3, 65536, 4)


def test_a_broken_key_is_refused_without_echoing_it(tmp_path: Path) -> None:
    settings = make_settings(
        home=tmp_path, jwt_private_key="-----BEGIN PRIVATE KEY-----\nsecretjunk"
    )
    with pytest.raises(ValueError, match="KUBESERVE_JWT_PRIVATE_KEY") as info:
        load_key_ring(settings)
    assert "secretjunk" not in str(info.value)
