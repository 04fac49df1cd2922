"""Gateway authentication against a fake auth served over HTTP: JWKS caching and rotation, the
bound on refetches, API-key resolution and its cache, deployment-scoped keys."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from kubeserve_common.errors import Forbidden
from kubeserve_common.security.principal import PRINCIPAL_HEADER, decode_principal
from kubeserve_common.security.tokens import SigningKey, issue_access_token
from kubeserve_common.testing import TEST_INTERNAL_SECRET
from kubeserve_common.testing.servers import free_port
from kubeserve_common.testing.waiting import wait_until
from kubeserve_gateway.services.authenticator import extract_credential
from kubeserve_gateway.services.gateway import IncomingRequest

SECRET = TEST_INTERNAL_SECRET
API_KEY = "ks_" + "a" * 40


def seen_principal(response: Any) -> Any:
    for name, value in response.json()["headers"]:
        if name == PRINCIPAL_HEADER:
            return decode_principal(value, SECRET)
    raise AssertionError("no principal reached the upstream")


async def test_jwks_is_fetched_once_and_cached(stack: Any) -> None:
    for _ in range(5):
        r = await stack.client.get("/api/v1/models", headers=stack.bearer())
        assert r.status_code == 200
    assert stack.auth.jwks_fetches == 1


async def test_a_flood_of_unknown_kids_cannot_hammer_auth(make_stack: Any) -> None:
    async with make_stack(jwks_refetch_interval=3600) as stack:
        assert (await stack.client.get("/api/v1/models", headers=stack.bearer())).status_code == 200
        stranger = SigningKey.generate()

        async def forged() -> int:
            token = issue_access_token(
                stranger,
                subject=stack.user_id,
                issuer="kubeserve-auth",
                audience="kubeserve",
                ttl_seconds=60,
            )
            r = await stack.client.get("/api/v1/models", headers=stack.bearer(token))
            return r.status_code

        codes = await asyncio.gather(*(forged() for _ in range(50)))
        assert set(codes) == {401}
        # The first fetch plus at most one refetch for the whole flood.
        assert stack.auth.jwks_fetches <= 2


async def test_a_rotated_key_is_picked_up_on_its_first_token(make_stack: Any) -> None:
    async with make_stack(jwks_refetch_interval=0) as stack:
        assert (await stack.client.get("/api/v1/models", headers=stack.bearer())).status_code == 200
        stack.auth.keys.insert(0, SigningKey.generate())  # rotation: new current, old previous
        new_token = stack.auth.token(stack.user_id)
        r = await stack.client.get("/api/v1/models", headers=stack.bearer(new_token))
        assert r.status_code == 200
        assert stack.auth.jwks_fetches == 2


async def test_auth_down_before_any_key_is_known_is_503(make_stack: Any) -> None:
    async with make_stack(auth_url=f"http://127.0.0.1:{free_port()}") as stack:
        r = await stack.client.get("/api/v1/models", headers=stack.bearer())
        assert r.status_code == 503
        assert r.json()["error"]["code"] == "upstream_unavailable"
        assert r.headers["retry-after"]
        # An API key cannot be resolved either: 503, not 401 (the key may well be valid).
        r = await stack.client.get("/api/v1/models", headers={"x-api-key": API_KEY})
        assert r.status_code == 503
        assert r.json()["error"]["code"] == "upstream_unavailable"


async def test_api_keys_in_both_headers_resolve_and_are_cached(stack: Any) -> None:
    user = str(uuid.uuid4())
    key_id = str(uuid.uuid4())
    stack.auth.api_keys[API_KEY] = {
        "user_id": user,
        "role": "user",
        "api_key_id": key_id,
        "deployment_ids": None,
    }
    for headers in ({"x-api-key": API_KEY}, {"authorization": f"Bearer {API_KEY}"}):
        r = await stack.client.get("/api/v1/models", headers=headers)
        assert r.status_code == 200, r.text
        principal = seen_principal(r)
        assert str(principal.user_id) == user
        assert principal.auth == "api_key" and str(principal.api_key_id) == key_id
        assert principal.deployment_scope is None
        # The key itself never travels past the gateway to a non-auth upstream.
        assert not any(v == API_KEY or API_KEY in v for _, v in r.json()["headers"])
    assert stack.auth.resolves == 1  # second call served from the cache


async def test_unknown_and_revoked_keys_are_401_after_the_cache_ttl(make_stack: Any) -> None:
    async with make_stack(api_key_cache_ttl=0.3, api_key_negative_ttl=0.3) as stack:
        r = await stack.client.get("/api/v1/models", headers={"x-api-key": API_KEY})
        assert r.status_code == 401
        assert r.headers["www-authenticate"].startswith("Bearer")
        r = await stack.client.get("/api/v1/models", headers={"x-api-key": API_KEY})
        assert r.status_code == 401
        assert stack.auth.resolves == 1  # the negative answer was cached
        stack.auth.api_keys[API_KEY] = {
            "user_id": str(uuid.uuid4()),
            "role": "user",
            "api_key_id": str(uuid.uuid4()),
            "deployment_ids": None,
        }

        async def status() -> int:
            r = await stack.client.get("/api/v1/models", headers={"x-api-key": API_KEY})
            return r.status_code

        await wait_until(lambda: _is(status(), 200), message="the created key to work")
        del stack.auth.api_keys[API_KEY]  # revoked at auth
        await wait_until(lambda: _is(status(), 401), message="the revoked key to be refused")


async def _is(awaitable: Any, expected: int) -> bool:
    return (await awaitable) == expected


async def test_malformed_api_keys_never_reach_auth(stack: Any) -> None:
    for key in ("ks_short", "ks_" + "a" * 300, "ks_has space inside", "nope_" + "a" * 40):
        r = await stack.client.get("/api/v1/models", headers={"x-api-key": key})
        assert r.status_code == 401
    assert stack.auth.resolves == 0


async def test_a_scoped_key_is_refused_outside_its_deployments(stack: Any) -> None:
    allowed = str(uuid.uuid4())
    other = str(uuid.uuid4())
    stack.auth.api_keys[API_KEY] = {
        "user_id": str(uuid.uuid4()),
        "role": "user",
        "api_key_id": str(uuid.uuid4()),
        "deployment_ids": [allowed],
    }
    headers = {"x-api-key": API_KEY}
    r = await stack.client.get(f"/api/v1/deployments/{allowed}", headers=headers)
    assert r.status_code == 200
    assert seen_principal(r).deployment_scope == frozenset({allowed})
    r = await stack.client.get(f"/api/v1/deployments/{other}", headers=headers)
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    # In scope, it may read its deployment but not manage it.
    for method in ("DELETE", "PATCH", "POST"):
        r = await stack.client.request(method, f"/api/v1/deployments/{allowed}", headers=headers)
        assert r.status_code == 403, method
    # Anywhere that is not about one of its deployments, it could widen its own power: refused.
    for path in ("/api/v1/models", "/api/v1/deployments", "/api/v1/auth/api-keys"):
        r = await stack.client.get(path, headers=headers)
        assert r.status_code == 403, path

    # The principal the gateway builds, checked directly through its service.
    service = stack.gateway.service
    path = f"/api/v1/deployments/{other}"
    match = service.routes.match("GET", path)
    assert match is not None and match.deployment_id == other
    incoming = IncomingRequest("GET", path, "", [("x-api-key", API_KEY)], None, "127.0.0.1")
    with pytest.raises(Forbidden):
        await service.principal_for(incoming, match)
    principal = await stack.gateway.authenticator.authenticate(extract_credential(None, API_KEY))
    assert principal.can_use_deployment(allowed)
    assert not principal.can_use_deployment(other)
