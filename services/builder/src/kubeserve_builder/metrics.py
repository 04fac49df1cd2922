"""Prometheus metrics of the builder (registered in the default registry that `/metrics`
renders, next to the shared ones of kubeserve_common.metrics)."""

from __future__ import annotations

import time

from prometheus_client import Counter, Gauge, Histogram

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


class QueueWait:
    """When the longest-waiting claimable build was queued (epoch seconds, None when none
    waits), refreshed by the build loop's queue watcher; the gauge turns it into an age at
    scrape time, so the age keeps growing between refreshes and a scrape costs no query."""

    def __init__(self) -> None:
        self.since: float | None = None

    def age(self) -> float:
        return 0.0 if self.since is None else max(0.0, time.time() - self.since)


QUEUE_WAIT = QueueWait()
BUILD_QUEUE_OLDEST = Gauge(
    "kubeserve_build_queue_oldest_seconds",
    "Age of the oldest build waiting to be claimed (0 when none waits); the same value on "
    "every builder, as the queue is shared.",
)
BUILD_QUEUE_OLDEST.set_function(QUEUE_WAIT.age)
