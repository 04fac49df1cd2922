"""Issue 3 end to end, through the gateway's HTTP API only: the real auth service and the real
gateway on uvicorn over PostgreSQL and RabbitMQ, with a named test double (the gateway's echo
upstream) standing in for the registry and deployer so what arrives upstream can be seen."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from jose import jwt
from kubeserve_auth.bootstrap import bootstrap as auth_bootstrap
from kubeserve_auth.main import create_app as auth_create_app
from kubeserve_auth.testing import PASSWORD, make_settings, unique_email
from kubeserve_common.events import CloudEvent, UserRegistered
from kubeserve_common.events.topology import Topology
from kubeserve_common.messaging.bus import Subscription
from kubeserve_common.messaging.rabbitmq import RabbitMQBus
from kubeserve_common.security.principal import (
    PRINCIPAL_HEADER,
    Principal,
    decode_principal,
    encode_principal,
)
from kubeserve_common.security.tokens import SigningKey
from kubeserve_common.testing import TEST_INTERNAL_SECRET
from kubeserve_common.testing.plugin import delete_topology
from kubeserve_common.testing.servers import free_port, serve_app
from kubeserve_common.testing.waiting import wait_until
from kubeserve_gateway.bootstrap import bootstrap as gateway_bootstrap
from kubeserve_gateway.main import create_app as gateway_create_app
from kubeserve_gateway.settings import GatewaySettings
from kubeserve_gateway.testing import echo_upstream_app

ISSUER, AUDIENCE = "kubeserve-auth", "kubeserve"


@dataclass
class Platform:
    gateway: httpx.AsyncClient
    auth_url: str
    auth_home: Path
    gateway_parts: Any

    def signing_key(self) -> SigningKey:
        """The auth service's real current key (dev mode keeps it in its home)."""
        return SigningKey.from_pem((self.auth_home / "auth" / "jwt-signing-key.pem").read_text())


@pytest.fixture
def echo_url() -> Iterator[str]:
    """Test double for the registry and deployer: echoes what the gateway forwards."""
    with serve_app(echo_upstream_app()) as url:
        yield url


@pytest.fixture
def auth_server(
    database_url: str, amqp_url: str, bus_prefix: str, tmp_path: Path
) -> Iterator[tuple[str, Path]]:
    home = tmp_path / "auth-home"
    settings = make_settings(
        database_url=database_url, broker_url=amqp_url, bus_prefix=bus_prefix, home=home
    )
    with serve_app(auth_create_app(auth_bootstrap(settings))) as url:
        yield url, home


@pytest.fixture
async def make_platform(
    auth_server: tuple[str, Path],
    echo_url: str,
    database_url: str,
    amqp_url: str,
    bus_prefix: str,
    tmp_path: Path,
) -> AsyncIterator[Callable[..., contextlib.AbstractAsyncContextManager[Platform]]]:
    """`async with make_platform(**gateway_setting_overrides) as p:` a gateway in front of the
    real auth and the echo double."""
    auth_url, auth_home = auth_server

    @contextlib.asynccontextmanager
    async def make(**overrides: Any) -> AsyncIterator[Platform]:
        values: dict[str, Any] = {
            "dev_mode": True,
            "internal_secret": TEST_INTERNAL_SECRET,
            "home": tmp_path / "gateway-home",
            "database_url": database_url,
            "broker_url": amqp_url,
            "bus_prefix": bus_prefix,
            "auth_url": auth_url,
            "registry_url": echo_url,
            "deployer_url": echo_url,
            "api_key_cache_ttl": 0.5,
            "api_key_negative_ttl": 0.5,
            **overrides,
        }
        app = gateway_create_app(gateway_bootstrap(GatewaySettings(**values)))
        with serve_app(app) as url:
            async with httpx.AsyncClient(base_url=url, timeout=30) as client:
                yield Platform(client, auth_url, auth_home, app.state.gateway)

    yield make
    await delete_topology(amqp_url, Topology(bus_prefix), set())


@pytest.fixture
async def platform(make_platform: Callable[..., Any]) -> AsyncIterator[Platform]:
    async with make_platform() as p:
        yield p


async def signup(client: httpx.AsyncClient) -> tuple[dict[str, Any], dict[str, Any]]:
    """Register and log in through the gateway: (user, tokens)."""
    email = unique_email("e2e")
    r = await client.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
    assert r.status_code == 201, r.text
    user = r.json()
    r = await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return user, r.json()


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def assert_error(response: httpx.Response, status: int | tuple[int, ...]) -> None:
    statuses = (status,) if isinstance(status, int) else status
    assert response.status_code in statuses, (response.status_code, response.text)
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] and body["error"]["message"]


# -- sessions ----------------------------------------------------------------------------------


async def test_register_login_me_refresh_logout(platform: Platform) -> None:
    client = platform.gateway
    user, tokens = await signup(client)
    assert tokens["token_type"] == "bearer"

    r = await client.get("/api/v1/auth/me", headers=bearer(tokens["access_token"]))
    assert r.status_code == 200, r.text
    assert r.json()["id"] == user["id"] and r.json()["email"] == user["email"]

    r = await client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert r.status_code == 200, r.text
    rotated = r.json()
    assert rotated["refresh_token"] != tokens["refresh_token"]
    r = await client.get("/api/v1/auth/me", headers=bearer(rotated["access_token"]))
    assert r.status_code == 200

    # Reusing the rotated-out refresh token revokes the family, the new one included.
    r = await client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert_error(r, 401)
    r = await client.post("/api/v1/auth/refresh", json={"refresh_token": rotated["refresh_token"]})
    assert_error(r, 401)

    # A fresh session, logged out, cannot refresh any more.
    r = await client.post(
        "/api/v1/auth/login",
        data={"username": user["email"], "password": PASSWORD, "grant_type": "password"},
    )  # the OAuth2 password form, as the docs' Authorize button sends it
    assert r.status_code == 200, r.text
    session = r.json()
    r = await client.post("/api/v1/auth/logout", json={"refresh_token": session["refresh_token"]})
    assert r.status_code == 204
    r = await client.post("/api/v1/auth/refresh", json={"refresh_token": session["refresh_token"]})
    assert_error(r, 401)


async def test_user_registered_reaches_the_bus_once_per_user(
    platform: Platform, rabbit_bus_factory: Callable[..., RabbitMQBus], bus_prefix: str
) -> None:
    observer = rabbit_bus_factory("observer")
    await observer.connect()
    received: list[CloudEvent] = []

    async def collect(event: CloudEvent) -> None:
        received.append(event)

    queue = Topology(bus_prefix).queue("observer", "e2e")
    await observer.subscribe(Subscription(queue, (UserRegistered.event_type(),)), collect)
    users = [(await signup(platform.gateway))[0] for _ in range(2)]
    await wait_until(lambda: len(received) >= 2, message="two UserRegistered events")
    assert sorted(str(e.payload().user_id) for e in received) == sorted(  # type: ignore[attr-defined]
        u["id"] for u in users
    )


# -- forged and misused tokens -----------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _raw_jwt(header: dict[str, Any], claims: dict[str, Any], sign: Callable[[bytes], bytes]) -> str:
    head = _b64(json.dumps(header).encode())
    body = _b64(json.dumps(claims).encode())
    return f"{head}.{body}.{_b64(sign(f'{head}.{body}'.encode()))}"


def _claims(user_id: str, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "sub": user_id,
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "jti": uuid.uuid4().hex,
        "typ": "access",
        "role": "user",
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def _es256(key: SigningKey, claims: dict[str, Any], kid: str | None = None) -> str:
    return jwt.encode(claims, key.private_pem, algorithm="ES256", headers={"kid": kid or key.kid})


async def test_forged_and_misused_tokens_are_refused(platform: Platform) -> None:
    client = platform.gateway
    user, tokens = await signup(client)
    uid = user["id"]
    key = platform.signing_key()
    jwks = (await client.get("/api/v1/.well-known/jwks.json")).json()
    assert key.kid in {k["kid"] for k in jwks["keys"]}
    public_jwk = next(k for k in jwks["keys"] if k["kid"] == key.kid)

    # Control: our forging helper with the real key and correct claims is accepted, so each
    # refusal below is due to the one thing that case changes.
    r = await client.get("/api/v1/auth/me", headers=bearer(_es256(key, _claims(uid))))
    assert r.status_code == 200, r.text

    now = int(time.time())
    stranger = SigningKey.generate()
    real = tokens["access_token"]
    head, body, sig = real.split(".")
    tampered_claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    tampered_claims["role"] = "admin"
    tampered = f"{head}.{_b64(json.dumps(tampered_claims).encode())}.{sig}"
    public_pem = json.dumps(public_jwk).encode()

    forged = {
        "alg none": _raw_jwt(
            {"alg": "none", "typ": "JWT", "kid": key.kid}, _claims(uid), lambda _: b""
        ),
        "alg None, no signature": _raw_jwt(
            {"alg": "None", "kid": key.kid}, _claims(uid), lambda _: b""
        ).rsplit(".", 1)[0]
        + ".",
        "HS256 signed with the public key (JWK)": _raw_jwt(
            {"alg": "HS256", "typ": "JWT", "kid": key.kid},
            _claims(uid),
            lambda m: hmac.new(public_pem, m, hashlib.sha256).digest(),
        ),
        "HS256 signed with the public key (x)": _raw_jwt(
            {"alg": "HS256", "typ": "JWT", "kid": key.kid},
            _claims(uid),
            lambda m: hmac.new(public_jwk["x"].encode(), m, hashlib.sha256).digest(),
        ),
        "expired": _es256(key, _claims(uid, iat=now - 3600, nbf=now - 3600, exp=now - 1800)),
        "not yet valid (nbf)": _es256(key, _claims(uid, nbf=now + 3600)),
        "issued in the future (iat)": _es256(
            key, _claims(uid, iat=now + 3600, nbf=None, exp=now + 7200)
        ),
        "wrong iss": _es256(key, _claims(uid, iss="someone-else")),
        "wrong aud": _es256(key, _claims(uid, aud="another-app")),
        "no exp": _es256(key, _claims(uid, exp=None)),
        "no typ": _es256(key, _claims(uid, typ=None)),
        "refresh typ": _es256(key, _claims(uid, typ="refresh")),
        "unknown kid (a stranger's key)": _es256(stranger, _claims(uid)),
        "unknown kid (real key, unknown id)": _es256(key, _claims(uid), kid="not-a-known-kid"),
        "known kid, stranger's signature": _es256(stranger, _claims(uid), kid=key.kid),
        "tampered payload": tampered,
        "a refresh token used as an access token": tokens["refresh_token"],
        "garbage": "not.a.jwt",
    }
    for case, token in forged.items():
        r = await client.get("/api/v1/auth/me", headers=bearer(token))
        assert r.status_code == 401, (case, r.status_code, r.text)
        assert r.headers["www-authenticate"].startswith("Bearer"), case
        assert_error(r, 401)

    # ...and an access token used as a refresh token.
    r = await client.post("/api/v1/auth/refresh", json={"refresh_token": real})
    assert_error(r, 401)
    # The genuine token still works after all that.
    assert (await client.get("/api/v1/auth/me", headers=bearer(real))).status_code == 200


async def test_a_client_supplied_principal_header_is_ignored(platform: Platform) -> None:
    client = platform.gateway
    user, tokens = await signup(client)
    # The strongest forgery: a principal header correctly signed with the internal secret, for an
    # admin who is someone else.
    forged = encode_principal(Principal(user_id=uuid.uuid4(), role="admin"), TEST_INTERNAL_SECRET)
    r = await client.get("/api/v1/auth/me", headers={PRINCIPAL_HEADER: forged})
    assert_error(r, 401)
    r = await client.get("/api/v1/auth/users", headers={PRINCIPAL_HEADER: forged})
    assert_error(r, 401)
    r = await client.get(
        "/api/v1/auth/me", headers={**bearer(tokens["access_token"]), PRINCIPAL_HEADER: forged}
    )
    assert r.status_code == 200 and r.json()["id"] == user["id"]
    # What arrives upstream (the echo double behind /api/v1/models): only the verified one.
    r = await client.get(
        "/api/v1/models", headers={**bearer(tokens["access_token"]), PRINCIPAL_HEADER: forged}
    )
    arrived = [v for k, v in r.json()["headers"] if k == PRINCIPAL_HEADER]
    assert len(arrived) == 1
    principal = decode_principal(arrived[0], TEST_INTERNAL_SECRET)
    assert str(principal.user_id) == user["id"] and principal.role == "user"
    # An admin route with a user's token: refused by auth, passed through unchanged.
    r = await client.get("/api/v1/auth/users", headers=bearer(tokens["access_token"]))
    assert_error(r, (403, 404))


# -- API keys ----------------------------------------------------------------------------------


async def test_api_key_create_list_use_revoke(platform: Platform) -> None:
    client = platform.gateway
    user, tokens = await signup(client)
    auth = bearer(tokens["access_token"])
    r = await client.post("/api/v1/auth/api-keys", json={"name": "ci"}, headers=auth)
    assert r.status_code == 201, r.text
    created = r.json()
    secret = created["key"]
    assert secret.startswith("ks_")

    for headers in ({"x-api-key": secret}, bearer(secret)):
        r = await client.get("/api/v1/auth/me", headers=headers)
        assert r.status_code == 200, r.text
        assert r.json()["id"] == user["id"]

    r = await client.get("/api/v1/auth/api-keys", headers=auth)
    assert r.status_code == 200
    listed = r.json()
    assert [k["id"] for k in listed] == [created["id"]]
    assert secret not in r.text and "key" not in listed[0]

    r = await client.delete(f"/api/v1/auth/api-keys/{created['id']}", headers=auth)
    assert r.status_code == 204

    async def refused() -> bool:
        r = await client.get("/api/v1/auth/me", headers={"x-api-key": secret})
        return r.status_code == 401

    # The gateway may serve the key from its cache for api_key_cache_ttl (0.5 s here).
    await wait_until(refused, timeout=10, message="the revoked key to be refused")
    r = await client.get("/api/v1/auth/me", headers=bearer(secret))
    assert_error(r, 401)
    assert r.headers["www-authenticate"].startswith("Bearer")


async def test_a_key_scoped_to_other_deployments_is_refused(platform: Platform) -> None:
    client = platform.gateway
    _, tokens = await signup(client)
    mine, other = str(uuid.uuid4()), str(uuid.uuid4())
    r = await client.post(
        "/api/v1/auth/api-keys",
        json={"name": "predict-only", "deployment_ids": [mine]},
        headers=bearer(tokens["access_token"]),
    )
    assert r.status_code == 201, r.text
    key = {"x-api-key": r.json()["key"]}

    # In scope: the gateway lets it through (to the echo double standing in for the deployer)
    # with the principal it built - the scope is on it.
    r = await client.get(f"/api/v1/deployments/{mine}", headers=key)
    assert r.status_code == 200, r.text
    arrived = next(v for k, v in r.json()["headers"] if k == PRINCIPAL_HEADER)
    principal = decode_principal(arrived, TEST_INTERNAL_SECRET)
    assert principal.auth == "api_key" and principal.deployment_scope == frozenset({mine})
    assert principal.can_use_deployment(mine) and not principal.can_use_deployment(other)

    r = await client.get(f"/api/v1/deployments/{other}", headers=key)
    assert_error(r, 403)
    # Nor can it act outside deployments, e.g. mint itself an unscoped key.
    r = await client.post("/api/v1/auth/api-keys", json={"name": "escalate"}, headers=key)
    assert_error(r, 403)


# -- limits and bad input ----------------------------------------------------------------------


async def test_rate_limit_is_429_with_retry_after(make_platform: Callable[..., Any]) -> None:
    async with make_platform(rate_limit_ip_rps=0.01, rate_limit_ip_burst=3) as platform:
        body = {"email": "nobody@example.com", "password": "wrong-Password-1"}
        for _ in range(3):
            r = await platform.gateway.post("/api/v1/auth/login", json=body)
            assert r.status_code == 401
        r = await platform.gateway.post("/api/v1/auth/login", json=body)
        assert_error(r, 429)
        assert int(r.headers["retry-after"]) >= 1


async def test_bad_input_is_a_json_4xx_never_a_500(platform: Platform) -> None:
    client = platform.gateway
    _, tokens = await signup(client)
    json_type = {"content-type": "application/json"}
    reg, login, keys = "/api/v1/auth/register", "/api/v1/auth/login", "/api/v1/auth/api-keys"
    cases: list[tuple[str, str, dict[str, Any]]] = [
        ("POST", reg, {"json": {}}),
        ("POST", reg, {"json": {"email": "a@example.com"}}),
        ("POST", reg, {"json": {"email": "not-an-email", "password": PASSWORD}}),
        ("POST", reg, {"json": {"email": 123, "password": PASSWORD}}),
        ("POST", reg, {"json": {"email": ["x"], "password": {"a": 1}}}),
        ("POST", reg, {"json": [1, 2, 3]}),
        ("POST", reg, {"content": b"{not json", "headers": json_type}),
        ("POST", login, {"json": {"email": "a@example.com"}}),
        ("POST", login, {"json": {"email": 1, "password": 2}}),
        ("POST", login, {"data": {"username": "a@example.com"}}),
        ("POST", login, {"content": b"\xff\xfe", "headers": json_type}),
        ("POST", "/api/v1/auth/refresh", {"json": {"refresh_token": 5}}),
        ("POST", "/api/v1/auth/refresh", {"json": {}}),
        ("POST", "/api/v1/auth/logout", {"json": {"refresh_token": None}}),
        ("POST", keys, {"json": {"name": ""}, "auth": True}),
        ("POST", keys, {"json": {"name": "x", "deployment_ids": ["no"]}, "auth": True}),
        ("DELETE", f"{keys}/not-a-uuid", {"auth": True}),
        # Oversized: over the gateway's 1 MiB default, and over auth's own smaller limit.
        ("POST", reg, {"content": b"x" * (2 * 1024 * 1024)}),
        ("POST", reg, {"content": b"x" * (200 * 1024)}),
    ]
    for method, path, options in cases:
        options = dict(options)
        headers = dict(options.pop("headers", {}))
        if options.pop("auth", False):
            headers.update(bearer(tokens["access_token"]))
        r = await client.request(method, path, headers=headers, **options)
        assert 400 <= r.status_code < 500, (method, path, options, r.status_code, r.text)
        assert_error(r, r.status_code)
    r = await client.post("/api/v1/auth/register", content=b"x" * (2 * 1024 * 1024))
    assert_error(r, 413)


async def test_upstream_down_is_503_json(make_platform: Callable[..., Any]) -> None:
    async with make_platform(registry_url=f"http://127.0.0.1:{free_port()}") as platform:
        _, tokens = await signup(platform.gateway)
        r = await platform.gateway.get("/api/v1/models", headers=bearer(tokens["access_token"]))
        assert_error(r, 503)


async def test_public_openapi_document_lists_auth_routes(platform: Platform) -> None:
    r = await platform.gateway.get("/api/v1/openapi.json")
    assert r.status_code == 200
    doc = r.json()
    paths = doc["paths"]
    for path in ("register", "login", "refresh", "logout"):
        assert paths[f"/api/v1/auth/{path}"]["post"]["security"] == []
    assert {"bearerAuth": []} in paths["/api/v1/auth/me"]["get"]["security"]
    assert "/api/v1/auth/api-keys" in paths and "/api/v1/.well-known/jwks.json" in paths
    assert not any(p.startswith("/internal") or "/internal/" in p for p in paths)
    assert not any(p in ("/healthz", "/readyz", "/metrics") for p in paths)
    assert all(p.startswith("/api/v1/") for p in paths)
    # Every $ref points at a schema that is there.
    text = json.dumps(doc)
    for name in {part.split('"')[0] for part in text.split("#/components/schemas/")[1:]}:
        assert name in doc["components"]["schemas"], name
