"""Pure units of the gateway: the token bucket, the route table, header hygiene, client IPs."""

from __future__ import annotations

import pytest
from kubeserve_common.security.tokens import InvalidToken
from kubeserve_gateway.domain.errors import InvalidCredentials
from kubeserve_gateway.domain.headers import (
    client_ip,
    client_response_headers,
    upstream_request_headers,
)
from kubeserve_gateway.domain.ratelimit import Limit, MemoryBuckets
from kubeserve_gateway.domain.routes import Access, BodyLimit, RouteTable, default_routes
from kubeserve_gateway.services.authenticator import extract_credential, principal_from_claims


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_allows_a_burst_then_refills_at_the_rate() -> None:
    clock = Clock()
    buckets, limit = MemoryBuckets(clock=clock), Limit(2.0, 3)
    assert [buckets.hit("a", limit).allowed for _ in range(4)] == [True, True, True, False]
    denied = buckets.hit("a", limit)
    assert not denied.allowed and denied.retry_after == pytest.approx(0.5)
    assert denied.retry_after_header == "1"
    assert buckets.hit("b", limit).allowed  # keys are independent
    clock.now += 0.5
    assert buckets.hit("a", limit).allowed
    assert not buckets.hit("a", limit).allowed
    clock.now += 100
    assert [buckets.hit("a", limit).allowed for _ in range(4)] == [True, True, True, False]


def test_token_bucket_memory_is_bounded() -> None:
    buckets = MemoryBuckets(max_keys=100, clock=Clock())
    for i in range(1000):
        buckets.hit(f"ip{i}", Limit(1.0, 1))
    assert len(buckets) == 100


def test_route_table() -> None:
    table = RouteTable(default_routes())
    login = table.match("POST", "/api/v1/auth/login")
    assert login and login.route.access is Access.PUBLIC and login.upstream_path == "/auth/login"
    me = table.match("GET", "/api/v1/auth/me")
    assert me and me.route.access is Access.AUTHENTICATED and me.upstream_path == "/auth/me"
    assert table.match("GET", "/api/v1/auth/login").route.access is Access.AUTHENTICATED  # type: ignore[union-attr]
    upload = table.match("POST", "/api/v1/models/m1/versions")
    assert upload and upload.route.body_limit is BodyLimit.UPLOAD
    assert table.match("GET", "/api/v1/models/m1/versions").route.body_limit is BodyLimit.DEFAULT  # type: ignore[union-attr]
    assert (
        table.match("POST", "/api/v1/models/m1/versions/v1/x").route.body_limit is BodyLimit.DEFAULT
    )  # type: ignore[union-attr]
    dep = table.match("POST", "/api/v1/deployments/d1/rollback")
    assert dep and dep.deployment_id == "d1" and dep.upstream_path == "/deployments/d1/rollback"
    assert table.match("GET", "/api/v1/deployments").deployment_id is None  # type: ignore[union-attr]
    assert table.match("GET", "/api/v1/modelsx") is None
    assert table.match("GET", "/api/v1/auth") is None
    # OpenAPI: internal paths map back to public ones, internal-only paths do not.
    assert table.public_path("registry", "/models/{model_id}/versions", "post")[1] == (  # type: ignore[index]
        "/api/v1/models/{model_id}/versions"
    )
    assert table.public_path("auth", "/.well-known/jwks.json", "get")[1] == (  # type: ignore[index]
        "/api/v1/.well-known/jwks.json"
    )
    assert table.public_path("auth", "/internal/api-keys/resolve", "post") is None
    assert table.public_path("auth", "/healthz", "get") is None
    assert table.public_path("registry", "/auth/me", "get") is None


def test_request_headers_drop_hop_by_hop_and_internal_ones() -> None:
    out = upstream_request_headers(
        [
            ("Host", "api.example"),
            ("Connection", "keep-alive, X-Secret-Hop"),
            ("X-Secret-Hop", "1"),
            ("Transfer-Encoding", "chunked"),
            ("X-Kubeserve-Principal", "forged"),
            ("Authorization", "Bearer t"),
            ("X-Forwarded-For", "10.0.0.1"),
            ("Content-Type", "application/json"),
            ("Content-Length", "12"),
        ],
        principal_token="signed",
        request_id="rid",
        client_ip="192.0.2.1",
        scheme="https",
        forward_credentials=False,
    )
    assert out == [
        ("content-type", "application/json"),
        ("content-length", "12"),
        ("x-forwarded-for", "10.0.0.1, 192.0.2.1"),
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "api.example"),
        ("x-request-id", "rid"),
        ("x-kubeserve-principal", "signed"),
    ]


def test_response_headers_keep_duplicates_and_drop_hop_by_hop() -> None:
    out = client_response_headers(
        [
            ("Set-Cookie", "a=1"),
            ("Set-Cookie", "b=2"),
            ("Transfer-Encoding", "chunked"),
            ("Connection", "close"),
            ("Server", "uvicorn"),
            ("Content-Length", "5"),
        ]
    )
    assert out == [("set-cookie", "a=1"), ("set-cookie", "b=2"), ("content-length", "5")]


def test_client_ip_trusts_only_configured_proxies() -> None:
    assert client_ip("10.0.0.9", "1.2.3.4", 0) == "10.0.0.9"
    assert client_ip("10.0.0.9", "6.6.6.6, 1.2.3.4", 1) == "1.2.3.4"
    assert client_ip("10.0.0.9", "1.2.3.4", 2) == "10.0.0.9"


def test_credentials() -> None:
    assert extract_credential(None, None) is None
    assert extract_credential("Bearer abc", None).kind == "token"  # type: ignore[union-attr]
    assert extract_credential("bearer ks_abc", None).kind == "api_key"  # type: ignore[union-attr]
    assert extract_credential(None, "ks_x").kind == "api_key"  # type: ignore[union-attr]
    for bad in ("Basic dTpw", "Bearer", "Bearer "):
        with pytest.raises(InvalidCredentials):
            extract_credential(bad, None)


def test_claims_issued_in_the_future_are_refused() -> None:
    sub = "6f1c1f8e-5a61-4a5e-9d7b-0d8f1b2a3c4d"
    assert principal_from_claims({"sub": sub, "iat": 1000}, now=1000).role == "user"
    assert principal_from_claims({"sub": sub, "iat": 1000, "role": "admin"}, now=1000).is_admin
    with pytest.raises(InvalidToken):
        principal_from_claims({"sub": sub, "iat": 2000}, now=1000)
    with pytest.raises(InvalidToken):
        principal_from_claims({"sub": "service:x", "iat": 1000}, now=1000)


def test_cold_start_predictions_are_routed_to_the_deployer_for_reading_only() -> None:
    table = RouteTable(default_routes())
    found = table.match("GET", "/api/v1/cold-start")
    assert found and found.route.upstream == "deployer" and found.upstream_path == "/cold-start"
    assert found.route.access is Access.AUTHENTICATED and found.deployment_id is None
    assert table.match("POST", "/api/v1/cold-start") is None
    published = table.public_path("deployer", "/cold-start", "get")
    assert published is not None and published[1] == "/api/v1/cold-start"


def test_usage_is_routed_to_the_deployer_for_reading_only() -> None:
    table = RouteTable(default_routes())
    usage = table.match("GET", "/api/v1/usage")
    assert usage and usage.route.upstream == "deployer" and usage.upstream_path == "/usage"
    assert usage.route.access is Access.AUTHENTICATED and usage.deployment_id is None
    assert table.match("POST", "/api/v1/usage") is None and table.path_exists("/api/v1/usage")
    found = table.public_path("deployer", "/usage", "get")
    assert found is not None and found[1] == "/api/v1/usage"  # as the OpenAPI document lists it


def test_long_paths_are_matched_and_labelled_but_never_memoized() -> None:
    # Both memos sit before authentication: a flood of long distinct paths must not pin memory.
    from kubeserve_gateway.domain.route_labels import _remembered, route_label

    table = RouteTable(default_routes())
    table.match("GET", "/api/v1/models")
    kept, labels = len(table._memo), _remembered.cache_info().currsize
    for i in range(50):
        path = f"/api/v1/predict/d{i}/v2/" + "x" * 2000
        match = table.match("POST", path)
        assert match is not None and match.deployment_id == f"d{i}"
        assert route_label(table, "POST", path) == "/api/v1/predict/{name}/v2/{name}"
    assert len(table._memo) == kept
    assert _remembered.cache_info().currsize == labels
