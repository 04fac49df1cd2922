"""charts/kubeserve ships the Master Dashboard (a ConfigMap for Grafana's dashboard sidecar) and
the alert/recording rules (a PrometheusRule), the same files docker-compose provisions."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from kubeserve_common.testing.promtool import check_rules

from deploy.grafana import master_dashboard
from tests.deploy.test_charts import (
    CHARTS,
    KUBE_VERSION,
    find,
    kubernetes_validate,
    one,
    render,
    values_for,
)

REPO = CHARTS.parent
COPIES = {
    "files/kubeserve-master.json": REPO / "deploy/grafana/dashboards/kubeserve-master.json",
    "files/kubeserve.rules.yml": REPO / "deploy/prometheus/rules/kubeserve.rules.yml",
}


def test_the_master_dashboard_is_what_its_generator_writes() -> None:
    # The panels' queries live in deploy/grafana/master_dashboard.py; the JSON both Grafana
    # (compose) and the chart ship is its output, committed.
    assert master_dashboard.OUT.read_text() == master_dashboard.render(), (
        "deploy/grafana/dashboards/kubeserve-master.json is stale: "
        "uv run python deploy/grafana/master_dashboard.py, then copy it to charts/kubeserve/files/"
    )


def test_the_charts_copies_are_the_provisioned_files() -> None:
    for copy, original in COPIES.items():
        assert (CHARTS / "kubeserve" / copy).read_text() == original.read_text(), (
            f"charts/kubeserve/{copy} is stale: cp {original.relative_to(REPO)} "
            f"charts/kubeserve/{copy}"
        )


def test_the_master_dashboard_configmap_is_picked_up_by_the_sidecar() -> None:
    objects = render("kubeserve", values_for("kubeserve", {}))
    configmap = one(
        [o for o in objects if o["metadata"]["name"].endswith("master-dashboard")], "ConfigMap"
    )
    kubernetes_validate.validate(configmap, KUBE_VERSION, strict=True)
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    dashboard = json.loads(configmap["data"]["kubeserve-master.json"])
    assert dashboard["uid"] == "kubeserve-master"
    assert dashboard == json.loads(COPIES["files/kubeserve-master.json"].read_text())
    # Off, and elsewhere: the operator's Grafana namespace and labels.
    off = render("kubeserve", values_for("kubeserve", {"grafanaDashboards": {"enabled": False}}))
    assert not [o for o in off if o["metadata"]["name"].endswith("master-dashboard")]
    moved = render(
        "kubeserve",
        values_for(
            "kubeserve",
            {"grafanaDashboards": {"namespace": "monitoring", "labels": {"dash": "yes"}}},
        ),
    )
    (cm,) = [o for o in moved if o["metadata"]["name"].endswith("master-dashboard")]
    assert cm["metadata"]["namespace"] == "monitoring"
    assert cm["metadata"]["labels"]["dash"] == "yes"


def test_the_prometheus_rule_carries_the_checked_rules(tmp_path: Path) -> None:
    assert not find(render("kubeserve", values_for("kubeserve", {})), "PrometheusRule")
    objects = render("kubeserve", values_for("kubeserve", {"prometheusRule": {"enabled": True}}))
    rule = one(objects, "PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert rule["spec"] == yaml.safe_load(COPIES["files/kubeserve.rules.yml"].read_text())
    # What the Prometheus Operator hands Prometheus passes promtool, templates included.
    rendered = tmp_path / "rules.yml"
    rendered.write_text(yaml.safe_dump(rule["spec"]))
    result = check_rules(rendered)
    assert result.returncode == 0, result.stdout + result.stderr


def _deployer_env(values: dict[str, object]) -> dict[str, str]:
    objects = render("kubeserve", values_for("kubeserve", values))
    (deployer,) = [
        d for d in find(objects, "Deployment") if d["metadata"]["name"].endswith("deployer")
    ]
    container = deployer["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", "") for e in container.get("env", [])}


def test_tenant_service_monitor_labels_come_from_the_platform_chart() -> None:
    from kubeserve_deployer.backends.kubernetes.settings import KubernetesSettings

    default = json.loads(_deployer_env({})["KUBESERVE_K8S_SERVICE_MONITOR_LABELS"])
    # What docs/kubernetes.md installs kube-prometheus-stack as selects it.
    assert default == {"release": "kube-prometheus-stack"}
    custom = _deployer_env(
        {"deployer": {"kubernetes": {"serviceMonitorLabels": {"release": "kps", "team": "ml"}}}}
    )["KUBESERVE_K8S_SERVICE_MONITOR_LABELS"]
    parsed = KubernetesSettings.model_validate({"service_monitor_labels": json.loads(custom)})
    assert parsed.service_monitor_labels == {"release": "kps", "team": "ml"}
