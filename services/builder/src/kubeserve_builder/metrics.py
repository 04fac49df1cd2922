"""Prometheus metrics of the builder (registered in the default registry that `/metrics`
renders, next to the shared ones of kubeserve_common.metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

BUILDS = Counter(
    "kubeserve_builds_total",
    "Finished builds by outcome (succeeded, failed) and failing stage ('' when succeeded).",
    ["outcome", "stage"],
)
BUILD_RETRIES = Counter(
    "kubeserve_build_retries_total",
    "Builds put back in the queue: transient errors, expired leases, a builder stopping.",
    ["reason"],
)
BUILD_STEP_SECONDS = Histogram(
    "kubeserve_build_step_seconds",
    "Duration of each build step.",
    ["stage"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
)
