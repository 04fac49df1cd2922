"""The kubernetes backend's settings: one nested model (`DeployerSettings.k8s`) that still reads
every flat `KUBESERVE_K8S_*` variable operators and charts/kubeserve set, each one documented in
the deployer README; the three that handed shared object-store keys to runtimes are gone."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from kubeserve_deployer.backends.kubernetes.settings import KubernetesSettings
from kubeserve_deployer.settings import DeployerSettings
from pydantic import ValidationError
from pydantic_settings import SettingsError

README = Path(__file__).resolve().parents[1] / "README.md"

# The variables of the flat settings this package replaced (before the nested model), with a
# value each and the field it must land in.
PREVIOUS: dict[str, tuple[str, Any]] = {
    "KUBECONFIG": ("/etc/kube/config", Path("/etc/kube/config")),
    "CONTEXT": ("kind-kubeserve", "kind-kubeserve"),
    "NAMESPACE_PREFIX": ("tenant-", "tenant-"),
    "CHART_PATH": ("/opt/charts/model-serving", Path("/opt/charts/model-serving")),
    "RUNTIME_IMAGE": ("reg.example/rt:1", "reg.example/rt:1"),
    "IMAGE_PULL_POLICY": ("Always", "Always"),
    "INGRESS_ENABLED": ("true", True),
    "INGRESS_CLASS_NAME": ("nginx-internal", "nginx-internal"),
    "INGRESS_HOSTNAME": ("ml.example.com", "ml.example.com"),
    "INGRESS_AUTH_URL": ("http://gw/internal/auth/predict", "http://gw/internal/auth/predict"),
    "INGRESS_TLS_SECRET": ("ml-tls", "ml-tls"),
    "INGRESS_NAMESPACE": ("ingress", "ingress"),
    "MONITORING_NAMESPACE": ("obs", "obs"),
    "GATEWAY_NAMESPACE": ("kubeserve", "kubeserve"),
    "OBJECT_STORE_CIDR": ("10.0.0.0/8", "10.0.0.0/8"),
    "OBJECT_STORE_NAMESPACE": ("minio", "minio"),
    "OBJECT_STORE_PORT": ("9001", 9001),
    "DNS_NAMESPACE": ("dns", "dns"),
    "SERVICE_MONITOR": ("false", False),
    "AUTOSCALING_ENABLED": ("true", True),
    "AUTOSCALING_MAX_REPLICAS": ("4", 4),
    "ROLLOUT_TIMEOUT_SECONDS": ("120", 120.0),
    "POLL_INTERVAL": ("1.5", 1.5),
    "OBSERVE_INTERVAL": ("20", 20.0),
    "RELEASE_SCAN_INTERVAL": ("30", 30.0),
    "REQUEST_TIMEOUT": ("7", 7.0),
    "HELM_TIMEOUT": ("90", 90.0),
    "HELM_EXECUTABLE": ("/usr/local/bin/helm", "/usr/local/bin/helm"),
    "REPLICA_CPU_REQUEST": ("100m", "100m"),
    "REPLICA_CPU_LIMIT": ("300m", "300m"),
    "REPLICA_MEMORY_REQUEST": ("256Mi", "256Mi"),
    "REPLICA_MEMORY_LIMIT": ("512Mi", "512Mi"),
    "QUOTA_CPU": ("4", "4"),
    "QUOTA_MEMORY": ("8Gi", "8Gi"),
    "QUOTA_PODS": ("10", 10),
    "S3_ENDPOINT_URL": ("http://minio.minio.svc:9000", "http://minio.minio.svc:9000"),
    "TENANT_ACCESS": ("clusterWide", "clusterWide"),
    "TENANT_CLUSTER_ROLE": ("role", "role"),
    "SERVICE_ACCOUNT": ("sa", "sa"),
    "SERVICE_ACCOUNT_NAMESPACE": ("platform", "platform"),
}
REMOVED = ("S3_SECRET_NAME", "TENANT_S3_ACCESS_KEY_ID", "TENANT_S3_SECRET_ACCESS_KEY")


def test_every_previous_variable_still_lands_in_the_nested_model(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, (value, _) in PREVIOUS.items():
        monkeypatch.setenv(f"KUBESERVE_K8S_{name}", value)
    monkeypatch.setenv("KUBESERVE_QUOTA_MAX_REPLICAS", "9")  # a flat field beside it, unchanged
    settings = DeployerSettings(dev_mode=True)
    for name, (_, expected) in PREVIOUS.items():
        assert getattr(settings.k8s, name.lower()) == expected, name
    assert settings.quota_max_replicas == 9


def test_new_variables_and_json_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBESERVE_K8S_SERVICE_MONITOR_LABELS", '{"release": "kps", "team": "ml"}')
    monkeypatch.setenv("KUBESERVE_K8S_LEASE_DURATION_SECONDS", "30")
    monkeypatch.setenv("KUBESERVE_K8S_RENEW_DEADLINE_SECONDS", "20")
    settings = DeployerSettings(dev_mode=True)
    assert settings.k8s.service_monitor_labels == {"release": "kps", "team": "ml"}
    assert settings.k8s.lease_duration_seconds == 30.0
    # The defaults: on, and selected by a kube-prometheus-stack release of that name.
    assert KubernetesSettings().service_monitor is True
    assert KubernetesSettings().service_monitor_labels == {"release": "kube-prometheus-stack"}


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        # Not JSON: pydantic-settings stops at the source, naming the nested model.
        ("SERVICE_MONITOR_LABELS", "release=kps", 'field "k8s"'),
        ("SERVICE_MONITOR_LABELS", '{"release": 1}', "service_monitor_labels"),
        ("QUOTA_PODS", "0", "quota_pods"),
        ("RENEW_DEADLINE_SECONDS", "60", "renew_deadline_seconds must be less than"),
        ("ARTIFACT_URL_TTL_SECONDS", str(8 * 24 * 3600), "artifact_url_ttl_seconds"),
    ],
)
def test_invalid_values_are_refused_with_the_setting_named(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, problem: str
) -> None:
    monkeypatch.setenv(f"KUBESERVE_K8S_{name}", value)
    with pytest.raises((ValidationError, SettingsError), match=problem):
        DeployerSettings(dev_mode=True)


def test_shared_runtime_credentials_are_gone() -> None:
    fields = {f.upper() for f in KubernetesSettings.model_fields}
    assert not fields & set(REMOVED)


def test_every_variable_is_documented_in_the_readme() -> None:
    documented = set(re.findall(r"KUBESERVE_K8S_([A-Z0-9_]+)", README.read_text()))
    fields = {f.upper() for f in KubernetesSettings.model_fields}
    assert fields - documented == set(), "undocumented"
    assert documented - fields == set(), "documented but not a setting"
