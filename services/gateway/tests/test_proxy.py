"""The reverse proxy over real sockets: routing, header hygiene, streaming both ways, upstream
failures, body limits, rate limits, CORS."""

from __future__ import annotations

import asyncio
import hashlib
import os
from typing import Any

import httpx
from kubeserve_common.security.principal import PRINCIPAL_HEADER, Principal, decode_principal
from kubeserve_common.testing import TEST_INTERNAL_SECRET
from kubeserve_common.testing.servers import free_port
from kubeserve_common.testing.waiting import wait_until

MIB = 1024 * 1024
SECRET = TEST_INTERNAL_SECRET


def headers_of(echoed: dict[str, Any]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, value in echoed["headers"]:
        out.setdefault(name, []).append(value)
    return out


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"} and body["error"]["message"]
    if code:
        assert body["error"]["code"] == code


async def test_routes_rewrite_paths_and_keep_the_query(stack: Any) -> None:
    cases = {
        "/api/v1/models": "/models",
        "/api/v1/models/abc/versions/v2": "/models/abc/versions/v2",
        "/api/v1/deployments": "/deployments",
        "/api/v1/deployments/d1/rollback": "/deployments/d1/rollback",
        "/api/v1/auth/me": "/auth/me",
        "/api/v1/auth/api-keys/k1": "/auth/api-keys/k1",
    }
    for public, internal in cases.items():
        r = await stack.client.get(public, params={"page": "2", "q": "a b"}, headers=stack.bearer())
        assert r.status_code == 200, (public, r.text)
        assert r.json()["path"] == internal
        assert r.json()["query"] == "page=2&q=a+b"


async def test_the_verified_principal_replaces_any_client_supplied_one(stack: Any) -> None:
    forged = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZG1pbiJ9.forged"
    r = await stack.client.get(
        "/api/v1/models",
        headers={
            **stack.bearer(),
            PRINCIPAL_HEADER: forged,
            "X-Kubeserve-Principal": forged,
            "x-kubeserve-anything": "x",
            "x-request-id": "req-123",
        },
    )
    assert r.status_code == 200
    seen = headers_of(r.json())
    assert len(seen[PRINCIPAL_HEADER]) == 1
    principal = decode_principal(seen[PRINCIPAL_HEADER][0], SECRET)
    assert principal == Principal(user_id=principal.user_id, role="user", auth="token")
    assert str(principal.user_id) == stack.user_id
    assert "x-kubeserve-anything" not in seen
    # Credentials stay at the gateway unless the upstream is auth.
    assert "authorization" not in seen
    assert seen["x-request-id"] == ["req-123"]
    assert r.headers["x-request-id"] == "req-123"
    assert r.headers.get_list("x-request-id") == ["req-123"]
    assert seen["x-forwarded-for"] == ["127.0.0.1"]
    assert r.headers["x-upstream"] == "echo"


async def test_a_principal_header_without_credentials_is_not_enough(stack: Any) -> None:
    r = await stack.client.get("/api/v1/models", headers={PRINCIPAL_HEADER: "anything"})
    assert_error(r, 401, "unauthorized")
    assert r.headers["www-authenticate"].startswith("Bearer")


async def test_public_auth_routes_need_no_credentials_and_get_no_principal(stack: Any) -> None:
    for path in ("register", "login", "refresh", "logout"):
        r = await stack.client.post(
            f"/api/v1/auth/{path}", json={"a": 1}, headers={PRINCIPAL_HEADER: "forged"}
        )
        assert r.status_code == 200, (path, r.text)
        assert r.json()["path"] == f"/auth/{path}"
        assert PRINCIPAL_HEADER not in headers_of(r.json())
    r = await stack.client.get("/api/v1/.well-known/jwks.json")
    assert r.status_code == 200 and r.json()["keys"]
    # A stale token on a public route does not block a login.
    r = await stack.client.post(
        "/api/v1/auth/login", json={}, headers={"authorization": "Bearer not-a-token"}
    )
    assert r.status_code == 200


async def test_everything_else_needs_credentials(stack: Any) -> None:
    for method, path in (
        ("GET", "/api/v1/auth/me"),
        ("GET", "/api/v1/models"),
        ("POST", "/api/v1/models/m/versions"),
        ("DELETE", "/api/v1/deployments/d"),
        ("GET", "/api/v1/auth/users"),
        ("GET", "/api/v1/auth/login"),  # login is public for POST only
    ):
        r = await stack.client.request(method, path)
        assert_error(r, 401, "unauthorized")
        assert r.headers["www-authenticate"] == "Bearer"
    r = await stack.client.get("/api/v1/models", headers={"authorization": "Basic dTpw"})
    assert_error(r, 401)


async def test_unknown_routes_are_json_404(stack: Any) -> None:
    assert_error(await stack.client.get("/api/v1/nothing-here"), 404, "not_found")
    assert_error(await stack.client.get("/api/v2/models"), 404)


async def test_upstream_error_bodies_pass_through_unchanged(make_stack: Any) -> None:
    async with make_stack() as stack:
        # /status/{code} is not a routed path; reach it through the models route's target.
        stack.gateway.service.upstreams["registry"].url = stack.upstream_url + "/status/409#"
        r = await stack.client.get("/api/v1/models", headers=stack.bearer())
        assert r.status_code == 409
        assert r.json() == {"error": {"code": "upstream_said_so", "message": "status 409"}}


async def test_large_upload_streams_through_and_arrives_intact(stack: Any) -> None:
    size = 24 * MIB + 123
    digest = hashlib.sha256()

    async def body() -> Any:
        sent = 0
        block = os.urandom(MIB)
        while sent < size:
            piece = block[: min(MIB, size - sent)]
            digest.update(piece)
            sent += len(piece)
            yield piece

    r = await stack.client.post(
        "/api/v1/models/m1/versions", content=body(), headers=stack.bearer()
    )
    assert r.status_code == 200, r.text
    assert r.json()["size"] == size
    assert r.json()["sha256"] == digest.hexdigest()
    assert r.json()["path"] == "/models/m1/versions"


async def test_streamed_response_arrives_whole(make_stack: Any) -> None:
    async with make_stack() as stack:
        stack.gateway.service.upstreams["registry"].url = stack.upstream_url + "/stream/100#"
        async with stack.client.stream("GET", "/api/v1/models", headers=stack.bearer()) as r:
            assert r.status_code == 200
            total = 0
            async for chunk in r.aiter_raw():
                total += len(chunk)
        assert total == 100 * 65536


async def test_bodies_over_the_default_limit_get_413(make_stack: Any) -> None:
    async with make_stack(gateway_max_body_bytes=MIB, gateway_max_upload_bytes=4 * MIB) as stack:
        big = b"x" * (MIB + 1)
        r = await stack.client.post("/api/v1/models", content=big, headers=stack.bearer())
        assert_error(r, 413, "payload_too_large")

        async def chunked(n: int) -> Any:
            for _ in range(n):
                yield b"y" * 65536

        r = await stack.client.post("/api/v1/models", content=chunked(40), headers=stack.bearer())
        assert_error(r, 413, "payload_too_large")
        # The upload route takes more, up to its own limit.
        r = await stack.client.post(
            "/api/v1/models/m/versions", content=b"z" * (2 * MIB), headers=stack.bearer()
        )
        assert r.status_code == 200 and r.json()["size"] == 2 * MIB
        r = await stack.client.post(
            "/api/v1/models/m/versions", content=chunked(80), headers=stack.bearer()
        )
        assert_error(r, 413, "payload_too_large")
        # The gateway keeps serving afterwards.
        assert (await stack.client.get("/api/v1/models", headers=stack.bearer())).status_code == 200


async def test_upstream_down_is_503_json(make_stack: Any) -> None:
    async with make_stack(registry_url=f"http://127.0.0.1:{free_port()}") as stack:
        r = await stack.client.get("/api/v1/models", headers=stack.bearer())
        assert_error(r, 503, "upstream_unavailable")
        r = await stack.client.post(
            "/api/v1/models/m/versions", content=b"a" * 1000, headers=stack.bearer()
        )
        assert_error(r, 503)


async def test_upstream_timeout_is_504_json(make_stack: Any) -> None:
    async with make_stack(upstream_read_timeout=0.2) as stack:
        stack.gateway.service.upstreams["registry"].url = stack.upstream_url + "/slow?s=5#"
        r = await stack.client.get("/api/v1/models", headers=stack.bearer())
        assert_error(r, 504, "upstream_timeout")


async def test_rate_limit_per_ip_answers_429_with_retry_after(make_stack: Any) -> None:
    async with make_stack(rate_limit_ip_rps=0.01, rate_limit_ip_burst=3) as stack:
        codes = [
            (await stack.client.post("/api/v1/auth/login", json={})).status_code for _ in range(4)
        ]
        assert codes[:3] == [200, 200, 200]
        r = await stack.client.post("/api/v1/auth/login", json={})
        assert_error(r, 429, "rate_limited")
        assert int(r.headers["retry-after"]) >= 1


async def test_rate_limit_per_principal(make_stack: Any) -> None:
    async with make_stack(rate_limit_principal_rps=0.01, rate_limit_principal_burst=2) as stack:
        token = stack.bearer()
        assert (await stack.client.get("/api/v1/models", headers=token)).status_code == 200
        assert (await stack.client.get("/api/v1/models", headers=token)).status_code == 200
        r = await stack.client.get("/api/v1/models", headers=token)
        assert_error(r, 429, "rate_limited")
        assert r.headers["retry-after"]
        # Another user has their own bucket.
        other = stack.auth.token("00000000-0000-4000-8000-000000000001")
        r = await stack.client.get("/api/v1/models", headers={"authorization": f"Bearer {other}"})
        assert r.status_code == 200


async def test_cors_preflight_and_headers(make_stack: Any) -> None:
    async with make_stack(cors_origins="https://app.example") as stack:
        r = await stack.client.options(
            "/api/v1/models",
            headers={
                "origin": "https://app.example",
                "access-control-request-method": "POST",
                "access-control-request-headers": "authorization, content-type",
            },
        )
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] == "https://app.example"
        r = await stack.client.get("/api/v1/models", headers={"origin": "https://app.example"})
        assert r.status_code == 401
        assert r.headers["access-control-allow-origin"] == "https://app.example"
        r = await stack.client.get("/api/v1/models", headers={"origin": "https://evil.example"})
        assert "access-control-allow-origin" not in r.headers


async def test_health_endpoints_stay_open(stack: Any) -> None:
    assert (await stack.client.get("/healthz")).status_code == 200
    assert (await stack.client.get("/readyz")).status_code == 200


async def test_a_client_leaving_mid_upload_aborts_the_upstream_upload(
    stack: Any, bodies: list[dict[str, Any]]
) -> None:
    host, port = stack.url.removeprefix("http://").split(":")
    _reader, writer = await asyncio.open_connection(host, int(port))
    token = stack.bearer()["authorization"]
    writer.write(
        (
            "POST /api/v1/models/m1/versions HTTP/1.1\r\n"
            f"Host: {host}\r\nAuthorization: {token}\r\n"
            f"Content-Length: {100 * MIB}\r\n\r\n"
        ).encode()
    )
    writer.write(b"x" * MIB)
    await writer.drain()
    writer.transport.abort()  # the client vanishes with 99 MiB still to send
    await wait_until(
        lambda: any(b["path"] == "/models/m1/versions" for b in bodies),
        message="the upstream to see the upload end",
    )
    upload = next(b for b in bodies if b["path"] == "/models/m1/versions")
    assert upload["complete"] is False and upload["size"] < 100 * MIB
    # And the gateway carries on.
    assert (await stack.client.get("/api/v1/models", headers=stack.bearer())).status_code == 200


async def test_paths_cannot_climb_out_of_their_route(stack: Any) -> None:
    for raw in (
        "/api/v1/models/%2E%2E/%2E%2E/internal/api-keys/resolve",
        "/api/v1/models/..%2F..%2Finternal%2Fapi-keys%2Fresolve",
        "/api/v1/auth/%2e%2e/internal/api-keys/resolve",
        "/api/v1/models/%2E/x",
    ):
        r = await _raw_get(stack, raw)
        assert r[0] == 400, (raw, r)
        assert b'"bad_request"' in r[1]


async def test_encoded_characters_stay_in_the_path(stack: Any) -> None:
    r = await stack.client.get("/api/v1/models/a%3Fb%23c%25d?x=1", headers=stack.bearer())
    assert r.status_code == 200
    assert r.json()["path"] == "/models/a?b#c%d"
    assert r.json()["query"] == "x=1"


async def _raw_get(stack: Any, raw_path: str) -> tuple[int, bytes]:
    """Send the path exactly as written (httpx would normalise it)."""
    host, port = stack.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    token = stack.bearer()["authorization"]
    writer.write(
        f"GET {raw_path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: {token}\r\n"
        "Connection: close\r\n\r\n".encode()
    )
    await writer.drain()
    data = await reader.read()
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body
