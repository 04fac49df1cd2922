"""Registry-specific Prometheus metrics (served on /metrics beside the shared ones)."""

from __future__ import annotations

from prometheus_client import Counter

UPLOADS = Counter(
    "kubeserve_registry_uploads_total",
    "Version uploads by outcome: stored, rejected (4xx), failed (storage or database), "
    "interrupted (client gone or request cancelled).",
    ["outcome"],
)
UPLOADED_BYTES = Counter(
    "kubeserve_registry_uploaded_bytes_total", "Bytes of model files stored as versions."
)
BUILD_RESULTS = Counter(
    "kubeserve_registry_build_results_total",
    "Build results consumed, by result (ready, failed) and whether they changed a version "
    "(applied) or were stale/for a missing version (ignored).",
    ["result", "effect"],
)
