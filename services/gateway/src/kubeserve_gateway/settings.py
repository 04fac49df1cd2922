"""Settings of the gateway service (environment variables `KUBESERVE_*`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

from kubeserve_common.security import tokens as _tokens
from kubeserve_common.settings import CommonSettings
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import NoDecode

MIB = 1024 * 1024
GIB = 1024 * MIB


class GatewaySettings(CommonSettings):
    port: int = 8080

    # -- access tokens (verified locally against auth's JWKS) --------------------------------
    jwt_issuer: str = getattr(_tokens, "ACCESS_ISSUER", "kubeserve-auth")
    jwt_audience: str = getattr(_tokens, "ACCESS_AUDIENCE", "kubeserve")
    jwks_ttl: float = Field(
        default=300.0, gt=0, description="Seconds before the JWKS is refetched (key rotation)."
    )
    jwks_refetch_interval: float = Field(
        default=10.0,
        ge=0,
        description="Minimum seconds between JWKS refetches caused by an unknown `kid`, so a "
        "flood of random key ids cannot hammer auth.",
    )

    token_cache_ttl: float = Field(
        default=60.0,
        ge=0,
        description="Seconds a verified access token is remembered (never past its exp); 0 "
        "verifies every request.",
    )
    token_cache_size: int = Field(default=10_000, ge=1)
    access_token_ttl_seconds: int = Field(
        default=900,
        ge=30,
        le=86_400,
        description="The longest access-token lifetime auth issues (the same variable as "
        "auth's): how long a disabled or deleted user stays on this gateway's deny-list.",
    )
    revoked_users_max: int = Field(
        default=100_000,
        ge=1,
        description="Users the deny-list holds at most (the oldest entry goes first).",
    )

    # -- API keys (resolved through auth, cached by a hash of the key) -------------------------
    api_key_cache_ttl: float = Field(
        default=5.0, ge=0, description="Seconds a resolved key is reused."
    )
    api_key_negative_ttl: float = Field(
        default=2.0, ge=0, description="Seconds an unknown/revoked key is remembered as such."
    )
    api_key_cache_size: int = Field(default=10_000, ge=1)
    api_key_max_stale: float = Field(
        default=300.0,
        ge=0,
        description="Seconds a key's last known resolution keeps serving while auth cannot "
        "answer (a revocation made meanwhile reaches this gateway by event or once auth "
        "answers again); 0 fails at once.",
    )
    jwks_max_stale: float = Field(
        default=3600.0,
        gt=0,
        description="Seconds the last fetched JWKS keeps verifying tokens while auth cannot "
        "answer; after that tokens are refused with 503 until a fetch succeeds.",
    )

    # -- rate limits (token buckets; shared by the replicas through the database when it is
    # PostgreSQL, see docs/rate-limits in the gateway README) -------------------------------
    rate_limit_enabled: bool = True
    rate_limit_store: Literal["auto", "memory", "database"] = Field(
        default="auto",
        description="Where buckets live: `database` shares them between gateway replicas "
        "(PostgreSQL), `memory` keeps them per process; `auto`: database on PostgreSQL.",
    )
    rate_limit_ip_rps: float = Field(
        default=100.0,
        gt=0,
        description="Refill per second, per client IP, on unauthenticated routes (login, "
        "register, refresh) and for failed authentications.",
    )
    rate_limit_ip_burst: int = Field(default=200, ge=1)
    rate_limit_principal_rps: float = Field(
        default=1000.0,
        gt=0,
        description="Refill per second per API key (unless the key has its own limit) and per "
        "user session (access tokens).",
    )
    rate_limit_principal_burst: int = Field(default=2000, ge=1)
    rate_limit_deployment_rps: float = Field(
        default=2000.0,
        gt=0,
        description="Refill per second per deployment, all callers together (predictions).",
    )
    rate_limit_deployment_burst: int = Field(default=4000, ge=1)
    rate_limit_lease_seconds: float = Field(
        default=0.05,
        gt=0,
        description="A replica leases what a bucket refills in this long (at most "
        "`rate_limit_lease_burst_fraction` of its burst) from the shared store at once.",
    )
    rate_limit_lease_burst_fraction: float = Field(default=0.05, gt=0, le=1)
    rate_limit_lease_ttl: float = Field(
        default=1.0, gt=0, description="Seconds a leased token may be used before it goes back."
    )
    rate_limit_max_keys: int = Field(default=100_000, ge=1, description="Buckets kept in memory.")
    trusted_proxy_hops: int = Field(
        default=0,
        ge=0,
        description="Proxies in front of the gateway whose X-Forwarded-For entries are trusted "
        "for the client IP (0: use the socket peer).",
    )

    # -- bodies (prefixed: other services have their own `max_body_bytes`, and the embedded
    # mode runs them all from one environment) --------------------------------------------
    gateway_max_body_bytes: int = Field(
        default=1 * MIB, ge=0, description="Default request body limit."
    )
    gateway_max_upload_bytes: int = Field(
        default=2 * GIB, ge=0, description="Body limit of POST /api/v1/models/{id}/versions."
    )

    # -- predictions --------------------------------------------------------------------------
    predict_route_ttl: float = Field(
        default=1.0,
        ge=0,
        description="Seconds a deployment's replica list (from the deployer) is reused.",
    )
    predict_route_max_stale: float = Field(
        default=900.0,
        ge=0,
        description="Seconds the last known replica list of a deployment keeps serving while "
        "the deployer (or its database) cannot answer lookups; 0 fails at once.",
    )

    # -- upstream calls ---------------------------------------------------------------------
    upstream_connect_timeout: float = Field(default=5.0, gt=0)
    upstream_read_timeout: float = Field(
        default=60.0, gt=0, description="Seconds to wait for each chunk of an upstream response."
    )
    upstream_write_timeout: float = Field(default=60.0, gt=0)
    upstream_pool_timeout: float = Field(default=5.0, gt=0)
    upstream_max_connections: int = Field(default=200, ge=1)
    upstream_max_keepalive: int = Field(default=50, ge=0)

    # -- autoscaling (issue 12): the load signal and scale-to-zero holding ---------------------
    load_report_interval: float = Field(
        default=1.0, gt=0, description="Seconds between in-flight reports to the deployer."
    )
    predict_hold_timeout: float = Field(
        default=30.0,
        ge=0,
        description="Seconds a prediction for a deployment scaled to zero waits for a replica "
        "(then 503 + Retry-After); 0 answers 503 at once.",
    )
    predict_hold_max_queue: int = Field(
        default=100, ge=0, description="Predictions that may wait per deployment scaled to zero."
    )

    # -- CORS and the public OpenAPI document ---------------------------------------------------
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Allowed browser origins: comma-separated or a JSON list; empty disables CORS.",
    )
    openapi_ttl: float = Field(
        default=60.0, ge=0, description="Seconds the merged document is kept."
    )

    # -- dashboard (static export served at /) and its browser-facing routes --------------------
    dashboard_dir: Path | None = Field(
        default=None,
        description="The dashboard's static export; default: frontend/out of a source checkout.",
    )
    grafana_url: str | None = Field(
        default=None,
        description="Public Grafana URL whose panels the dashboard embeds (allowed in frames); "
        "unset: the dashboard draws its own chart from /api/v1/metrics/deployments/{id}.",
    )
    grafana_dashboard_uid: str = "kubeserve-overview"
    grafana_panels: list[int] = Field(
        default_factory=lambda: [14, 15],
        description="Panel ids embedded per deployment (the provisioned dashboard's runtime row).",
    )
    events_ticket_ttl: float = Field(
        default=30.0, gt=0, le=300, description="Seconds an events ticket may be redeemed."
    )
    events_heartbeat: float = Field(
        default=15.0, gt=0, description="Seconds between keep-alive comments on an idle stream."
    )
    events_queue_size: int = Field(
        default=256, ge=1, description="Events buffered per stream before it is closed as slow."
    )
    events_max_per_user: int = Field(default=10, ge=1)
    events_max_stream_seconds: float = Field(
        default=900.0,
        gt=0,
        description="A stream ends after this long; the browser reconnects with a new ticket, "
        "so a revoked session stops receiving events.",
    )
    session_cookie_secure: bool | None = Field(
        default=None,
        description="Secure flag of the refresh cookie; default: when the request came over https.",
    )
    # -- Prometheus discovery (GET /internal/prometheus/targets; docs/observability.md) -------
    metrics_token: SecretStr | None = Field(
        default=None,
        description="Bearer token that opens the discovery routes to a non-loopback Prometheus "
        "(unset: loopback callers only).",
    )
    prometheus_scrape_address: str | None = Field(
        default=None,
        description="host:port at which Prometheus reaches this gateway (replica metrics are "
        "relayed through it); default: the host and port of KUBESERVE_GATEWAY_URL.",
    )
    prometheus_single_process: bool = Field(
        default=False,
        description="All services run in this one process (the embedded mode sets it): "
        "discovery lists one platform target instead of five views of one registry.",
    )

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value
