"""Prometheus metrics of one runtime: prediction latency and request counts by status.

Each app gets its own registry, so several apps in one process (tests, the local backend's
warm pool) never collide on metric names.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS_MS = (0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class RuntimeMetrics:
    """The runtime's metric families, labelled with this deployment and model version."""

    def __init__(self, deployment: str, version: str) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.deployment = deployment
        self.version = version
        labels = ("deployment", "version", "status")
        self.latency = Histogram(
            "prediction_latency_ms",
            "Time to answer a prediction request, in milliseconds",
            labels,
            buckets=LATENCY_BUCKETS_MS,
            registry=self.registry,
        )
        self.requests = Counter(
            "prediction_requests",
            "Prediction requests answered, by HTTP status",
            labels,
            registry=self.registry,
        )
        self.batch_rows = Histogram(
            "prediction_batch_rows",
            "Rows per model call (above 1 when adaptive batching merged requests)",
            ("deployment", "version"),
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.ready = Gauge(
            "model_ready",
            "1 once the model is loaded and serving",
            ("deployment", "version"),
            registry=self.registry,
        )
        self._batch_child = self.batch_rows.labels(deployment, version)
        self._children: dict[int, tuple[Histogram, Counter]] = {}

    def observe(self, status: int, elapsed_ms: float) -> None:
        # Label lookups cost more than the observation itself: cache one child per status.
        pair = self._children.get(status)
        if pair is None:
            labels = (self.deployment, self.version, str(status))
            pair = (self.latency.labels(*labels), self.requests.labels(*labels))
            self._children[status] = pair
        pair[0].observe(elapsed_ms)
        pair[1].inc()

    def observe_batch(self, rows: int) -> None:
        self._batch_child.observe(rows)

    def set_ready(self, ready: bool) -> None:
        self.ready.labels(self.deployment, self.version).set(1 if ready else 0)
