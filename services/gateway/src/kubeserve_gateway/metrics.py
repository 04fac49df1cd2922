"""Gateway-specific Prometheus metrics (the shared HTTP metrics come from kubeserve_common)."""

from __future__ import annotations

from prometheus_client import Counter

AUTH_FAILURES = Counter(
    "kubeserve_gateway_auth_failures_total",
    "Requests refused for their credentials, by kind (missing, token, api_key, scope).",
    ["kind"],
)
RATE_LIMITED = Counter(
    "kubeserve_gateway_rate_limited_total", "Requests refused with 429, by bucket.", ["bucket"]
)
UPSTREAM_ERRORS = Counter(
    "kubeserve_gateway_upstream_errors_total",
    "Upstream calls that failed before a response, by upstream and outcome (unavailable, "
    "timeout, bad_gateway).",
    ["upstream", "outcome"],
)
JWKS_FETCHES = Counter(
    "kubeserve_gateway_jwks_fetches_total", "JWKS fetches from auth, by outcome.", ["outcome"]
)
API_KEY_LOOKUPS = Counter(
    "kubeserve_gateway_api_key_lookups_total",
    "API-key resolutions asked of auth (cache misses), by outcome.",
    ["outcome"],
)
STALE_ROUTES = Counter(
    "kubeserve_gateway_stale_routes_total",
    "Route lookups answered from the last known route because the deployer could not answer.",
)
STALE_CREDENTIALS = Counter(
    "kubeserve_gateway_stale_credentials_total",
    "API keys accepted (or refused) from the last known answer because auth could not answer.",
)
RATE_LIMIT_STORE_CALLS = Counter(
    "kubeserve_gateway_rate_limit_store_calls_total",
    "Round trips to the shared rate-limit store (token leases), by outcome (ok, failed).",
    ["outcome"],
)
