"""Recent prediction traffic per deployment as this gateway saw it (request rate, error rate,
p95 latency in 10-second buckets over the last 30 minutes), for the dashboard's built-in chart
when no Grafana is configured. In memory and per gateway process: with several gateway
replicas each one reports its own share (the dashboard says so)."""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kubeserve_common.caching import Lru

BUCKET_SECONDS = 10
BUCKETS = 180  # 30 minutes
# Latency histogram bounds (ms); p95 is read from the cumulative counts (upper bound).
LATENCY_BOUNDS_MS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 30000, 60000)


@dataclass
class _Bucket:
    start: int
    requests: int = 0
    errors: int = 0
    latency: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BOUNDS_MS) + 1))


def _p95(counts: list[int]) -> float | None:
    total = sum(counts)
    if total == 0:
        return None
    rank = 0.95 * total
    seen = 0
    for i, count in enumerate(counts):
        seen += count
        if seen >= rank:
            return float(LATENCY_BOUNDS_MS[min(i, len(LATENCY_BOUNDS_MS) - 1)])
    return None


class PredictionStats:
    def __init__(
        self, *, max_deployments: int = 10_000, clock: Callable[[], float] = time.time
    ) -> None:
        self.max_deployments = max_deployments
        self.clock = clock
        self._series: Lru[str, list[_Bucket]] = Lru(max_deployments)

    def record(self, deployment_id: str, status: int, seconds: float) -> None:
        start = int(self.clock()) // BUCKET_SECONDS * BUCKET_SECONDS
        series = self._series.get_or_put(deployment_id, list)
        if not series or series[-1].start != start:
            series.append(_Bucket(start))
            cutoff = start - BUCKETS * BUCKET_SECONDS
            while series and series[0].start <= cutoff:
                series.pop(0)
        bucket = series[-1]
        bucket.requests += 1
        if status >= 400:
            bucket.errors += 1
        bucket.latency[bisect.bisect_left(LATENCY_BOUNDS_MS, seconds * 1000)] += 1

    def window(self, deployment_id: str, minutes: int = 15) -> dict[str, Any]:
        now = int(self.clock()) // BUCKET_SECONDS * BUCKET_SECONDS
        count = max(1, min(BUCKETS, minutes * 60 // BUCKET_SECONDS))
        by_start = {b.start: b for b in self._series.peek(deployment_id) or []}
        points = []
        total = _Bucket(0)
        for i in range(count - 1, -1, -1):
            start = now - i * BUCKET_SECONDS
            b = by_start.get(start) or _Bucket(start)
            total.requests += b.requests
            total.errors += b.errors
            total.latency = [x + y for x, y in zip(total.latency, b.latency, strict=True)]
            points.append(
                {
                    "t": start,
                    "requests": b.requests,
                    "errors": b.errors,
                    "rps": round(b.requests / BUCKET_SECONDS, 3),
                    "error_rate": round(b.errors / b.requests, 4) if b.requests else 0.0,
                    "p95_ms": _p95(b.latency),
                }
            )
        return {
            "deployment_id": deployment_id,
            "bucket_seconds": BUCKET_SECONDS,
            "window_seconds": count * BUCKET_SECONDS,
            "points": points,
            "totals": {
                "requests": total.requests,
                "errors": total.errors,
                "error_rate": round(total.errors / total.requests, 4) if total.requests else 0.0,
                "p95_ms": _p95(total.latency),
            },
            "scope": "this gateway process",
        }
