# ruff: noqa: E501 - PromQL reads better on one line
"""Generates deploy/grafana/dashboards/kubeserve-master.json, the Master Dashboard (issue 14.3):
`uv run python deploy/grafana/master_dashboard.py`. Panels keep their queries here so that the
test (tests/observability) and the chart's ConfigMap read one source; the JSON is committed.

`CLUSTER_ONLY` names the queries whose series exist only on Kubernetes (cAdvisor,
kube-state-metrics); everything else must return data on any KubeServe with traffic."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

UID = "kubeserve-master"
OUT = Path(__file__).resolve().parent / "dashboards" / "kubeserve-master.json"
RATE = "$__rate_interval"

# (title, unit, [(legend, expr)]); one row of panels per section.
SECTIONS: list[tuple[str, list[tuple[str, str, list[tuple[str, str]]]]]] = [
    (
        "Users",
        [
            (
                "CPU per user (replica processes)",
                "percentunit",
                [("{{tenant}}", f"sum by (tenant) (rate(kubeserve_replica_cpu_seconds_total[{RATE}]))")],
            ),
            (
                "CPU per user (Kubernetes, cAdvisor)",
                "percentunit",
                [
                    (
                        "{{namespace}}",
                        'sum by (namespace) (rate(container_cpu_usage_seconds_total{namespace=~"user-.*",container!=""}'
                        f"[{RATE}]))",
                    )
                ],
            ),
            (
                "Predictions per user",
                "reqps",
                [("{{tenant}}", f"sum by (tenant) (rate(kubeserve_prediction_duration_seconds_count[{RATE}]))")],
            ),
        ],
    ),
    (
        "Traffic and errors",
        [
            (
                "Total request rate (gateway)",
                "reqps",
                [("requests/s", f'sum(rate(kubeserve_http_requests_total{{service="gateway"}}[{RATE}]))')],
            ),
            (
                "Request rate by route",
                "reqps",
                [
                    (
                        "{{method}} {{route}}",
                        f'sum by (method, route) (rate(kubeserve_http_requests_total{{service="gateway"}}[{RATE}]))',
                    )
                ],
            ),
            (
                "Gateway 4xx / 5xx share",
                "percentunit",
                [
                    (
                        "4xx",
                        f'(sum(rate(kubeserve_http_requests_total{{service="gateway",status=~"4.."}}[{RATE}])) or vector(0)) '
                        f'/ clamp_min(sum(rate(kubeserve_http_requests_total{{service="gateway"}}[{RATE}])), 1e-9)',
                    ),
                    (
                        "5xx",
                        # `or vector(0)`: a platform that never failed shows 0, not "No data".
                        f'(sum(rate(kubeserve_http_requests_total{{service="gateway",status=~"5.."}}[{RATE}])) or vector(0)) '
                        f'/ clamp_min(sum(rate(kubeserve_http_requests_total{{service="gateway"}}[{RATE}])), 1e-9)',
                    ),
                ],
            ),
            (
                "Prediction errors by tenant and deployment (4xx, 5xx)",
                "reqps",
                [
                    (
                        "{{tenant}} {{deployment}} {{class}}",
                        'sum by (tenant, deployment, class) (label_replace(rate(kubeserve_prediction_duration_seconds_count'
                        f'{{status=~"[45].."}}[{RATE}]), "class", "$1xx", "status", "([45]).."))',
                    )
                ],
            ),
        ],
    ),
    (
        "Prediction latency",
        [
            (
                f"Prediction latency {name}",
                "s",
                [
                    (
                        "{{deployment}} {{version}}",
                        f"histogram_quantile({q}, sum by (deployment, version, le) "
                        f"(rate(kubeserve_prediction_duration_seconds_bucket[{RATE}])))",
                    )
                ],
            )
            for name, q in (("p50", "0.5"), ("p95", "0.95"), ("p99", "0.99"))
        ],
    ),
    (
        "Replicas and autoscaling",
        [
            (
                "Ready replicas per deployment",
                "none",
                [("{{deployment}}", "sum by (deployment) (kubeserve_model_ready)")],
            ),
            (
                "Replicas by status (deployer)",
                "none",
                [("{{status}}", "sum by (status) (kubeserve_deployer_replicas)")],
            ),
            (
                "HPA desired vs current (Kubernetes)",
                "none",
                [
                    (
                        "{{namespace}}/{{horizontalpodautoscaler}} desired",
                        'sum by (namespace, horizontalpodautoscaler) (kube_horizontalpodautoscaler_status_desired_replicas{namespace=~"user-.*"})',
                    )
                ],
            ),
        ],
    ),
    (
        "Events",
        [
            (
                "Outbox lag",
                "s",
                [("{{service}}", "max by (service) (kubeserve_outbox_lag_seconds)")],
            ),
            (
                "Dead letters (last hour)",
                "none",
                [
                    (
                        "{{service}} {{queue}}",
                        'sum by (service, queue) (increase(kubeserve_consumer_messages_total{outcome="dead_lettered"}[1h])) or on() vector(0)',
                    )
                ],
            ),
        ],
    ),
]

CLUSTER_ONLY = {"CPU per user (Kubernetes, cAdvisor)", "HPA desired vs current (Kubernetes)"}


def queries() -> list[tuple[str, str]]:
    """(panel title, expression) of every query of the dashboard."""
    return [(title, expr) for _, panels in SECTIONS for title, _, targets in panels for _, expr in targets]


def build() -> dict[str, Any]:
    panels: list[dict[str, Any]] = []
    next_id = 1
    y = 0
    for section, items in SECTIONS:
        panels.append({"id": next_id, "type": "row", "title": section, "collapsed": False,
                       "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}})  # fmt: skip
        next_id += 1
        y += 1
        width = 24 // len(items)
        for i, (title, unit, targets) in enumerate(items):
            panels.append(
                {
                    "id": next_id,
                    "type": "timeseries",
                    "title": title,
                    "datasource": {"type": "prometheus", "uid": "${datasource}"},
                    "gridPos": {"h": 8, "w": width, "x": i * width, "y": y},
                    "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
                    "targets": [
                        {"refId": chr(65 + n), "expr": expr, "legendFormat": legend}
                        for n, (legend, expr) in enumerate(targets)
                    ],
                }
            )
            next_id += 1
        y += 8
    return {
        "uid": UID,
        "title": "KubeServe - Master Dashboard",
        "tags": ["kubeserve"],
        "timezone": "browser",
        "editable": False,
        "graphTooltip": 1,
        "refresh": "30s",
        "schemaVersion": 39,
        "version": 1,
        "time": {"from": "now-1h", "to": "now"},
        "templating": {
            "list": [
                {"name": "datasource", "type": "datasource", "query": "prometheus",
                 "label": "Datasource", "current": {}, "hide": 0}
            ]
        },
        "annotations": {"list": []},
        "panels": panels,
    }


def render() -> str:
    return json.dumps(build(), indent=2) + "\n"


if __name__ == "__main__":
    if "--check" in sys.argv:
        sys.exit(0 if OUT.read_text() == render() else 1)
    OUT.write_text(render())
