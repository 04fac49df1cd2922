"""Prometheus metrics of one runtime replica, named for `promtool check metrics`: the
`kubeserve_` prefix and base units.

- `kubeserve_prediction_duration_seconds` (histogram; `_count` is the request count), by
  `tenant`, `deployment`, `version`, `status`: the roadmap's `prediction_latency_ms` under its
  compliant name (promtool rejects the abbreviated unit, so the old name is not exposed);
- `kubeserve_prediction_batch_rows` (histogram): rows per model call;
- `kubeserve_model_ready` (gauge): 1 once the model is loaded;
- `kubeserve_replica_cpu_seconds_total` (counter): this replica's CPU time, by `tenant`,
  `deployment`, `version` ("CPU per user" without a cluster), beside the standard
  `process_*` metrics of the process collector.

`tenant` is one value per replica (from its environment), never per request. Each app gets its
own registry, so several apps in one process (tests, the warm pool) never collide.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Gauge, Histogram, ProcessCollector
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

DURATION_BUCKETS_S = (
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10,
)  # fmt: skip
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
LABELS = ("tenant", "deployment", "version")


class _CpuCollector(Collector):
    def __init__(self, labels: tuple[str, str, str]) -> None:
        self.labels = list(labels)

    def collect(self) -> Iterator[CounterMetricFamily]:
        times = os.times()
        family = CounterMetricFamily(
            "kubeserve_replica_cpu_seconds",
            "CPU time (user + system) this replica's process has used",
            labels=LABELS,
        )
        family.add_metric(self.labels, times.user + times.system)
        yield family


class RuntimeMetrics:
    """The runtime's metric families, labelled with this replica's tenant, deployment and
    model version."""

    def __init__(self, deployment: str, version: str, *, tenant: str = "") -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.deployment = deployment
        self.version = version
        self.tenant = tenant
        base = (tenant, deployment, version)
        self.duration = Histogram(
            "kubeserve_prediction_duration_seconds",
            "Time to answer a prediction request, by HTTP status",
            (*LABELS, "status"),
            buckets=DURATION_BUCKETS_S,
            registry=self.registry,
        )
        self.batch_rows = Histogram(
            "kubeserve_prediction_batch_rows",
            "Rows per model call (above 1 when adaptive batching merged requests)",
            LABELS,
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.ready = Gauge(
            "kubeserve_model_ready",
            "1 once the model is loaded and serving",
            LABELS,
            registry=self.registry,
        )
        ProcessCollector(registry=self.registry)
        self.registry.register(_CpuCollector(base))
        self._base = base
        self._batch_child = self.batch_rows.labels(*base)
        self._children: dict[int, Histogram] = {}

    def observe(self, status: int, elapsed_s: float) -> None:
        # Label lookups cost more than the observation itself: cache one child per status.
        child = self._children.get(status)
        if child is None:
            child = self.duration.labels(*self._base, str(status))
            self._children[status] = child
        child.observe(elapsed_s)

    def observe_batch(self, rows: int) -> None:
        self._batch_child.observe(rows)

    def set_ready(self, ready: bool) -> None:
        self.ready.labels(*self._base).set(1 if ready else 0)
