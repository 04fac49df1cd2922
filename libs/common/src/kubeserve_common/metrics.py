"""Prometheus metrics shared by every service, labelled by service so the embedded mode
(five services in one process) exposes them side by side without clashing."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

HTTP_REQUESTS = Counter(
    "kubeserve_http_requests_total",
    "HTTP requests handled, by route template and status code.",
    ["service", "method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    "kubeserve_http_request_duration_seconds",
    "HTTP request latency by route template.",
    ["service", "method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
CONSUMER_MESSAGES = Counter(
    "kubeserve_consumer_messages_total",
    "Messages handled by consumers, by queue and outcome "
    "(processed, duplicate, retried, dead_lettered).",
    ["service", "queue", "outcome"],
)
CONSUMER_LATENCY = Histogram(
    "kubeserve_consumer_handler_seconds",
    "Time spent in a consumer handler.",
    ["service", "queue"],
)
OUTBOX_PUBLISHED = Counter(
    "kubeserve_outbox_published_total", "Outbox rows published to the bus.", ["service"]
)
OUTBOX_PUBLISH_FAILURES = Counter(
    "kubeserve_outbox_publish_failures_total",
    "Failed attempts to publish outbox rows (they stay pending and are retried).",
    ["service"],
)
OUTBOX_PENDING = Gauge(
    "kubeserve_outbox_pending", "Outbox rows not yet published (last relay pass).", ["service"]
)
OUTBOX_LAG = Gauge(
    "kubeserve_outbox_lag_seconds",
    "Age of the oldest unpublished outbox row (0 when none is pending).",
    ["service"],
)


def render_latest() -> tuple[bytes, str]:
    """The exposition body and its content type for a `/metrics` endpoint."""
    return generate_latest(), CONTENT_TYPE_LATEST
