"""Prometheus metrics of the deployer's runtime backend (served by the common `/metrics`)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

COLD_START = Histogram(
    "kubeserve_deployer_cold_start_seconds",
    "From the start of a replica (artifact fetch) to its first successful health check.",
    ["backend", "launcher"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60),
)
REPLICA_CRASHES = Counter(
    "kubeserve_deployer_replica_crashes_total",
    "Replicas found dead or unhealthy (each is restarted with backoff).",
    ["backend"],
)
REPLICAS = Gauge(
    "kubeserve_deployer_replicas",
    "Replicas the runtime backend tracks, by status (last reconcile pass).",
    ["backend", "status"],
)
WARM_POOL_UP = Gauge(
    "kubeserve_deployer_warm_pool_up", "1 when the local backend's warm pool is ready."
)
