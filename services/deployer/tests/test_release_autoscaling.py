"""The HPA of charts/model-serving rendered from a deployment's autoscaling settings, with the
real Helm engine: min/max from the settings, the maximum and the rollout surge bounded by what
the tenant's 5-pod quota leaves, min_replicas 0 run as 1 pod (no HPA goes below one), the
optional concurrency metric, and no HPA for a fixed replica count."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from kubeserve_deployer.backends.kubernetes.release import chart_values
from kubeserve_deployer.backends.kubernetes.settings import KubernetesSettings
from kubeserve_deployer.domain.autoscaling import AutoscalingPolicy
from kubeserve_deployer.domain.model import DeploymentSpec, RevisionTarget

REPO = Path(__file__).resolve().parents[3]
CHART = REPO / "charts" / "model-serving"


def _spec(replicas: int, policy: AutoscalingPolicy | None) -> DeploymentSpec:
    owner = uuid.uuid4()
    target = RevisionTarget(
        revision=1,
        version_id=uuid.uuid4(),
        version_tag="v1",
        artifact_uri=f"s3://bucket/models/{owner}/m/v1/model.joblib",
        sha256="a" * 64,
        filename="model.joblib",
        replicas=replicas,
    )
    return DeploymentSpec(uuid.uuid4(), owner, "iris", target, autoscaling=policy)


def _render(values: dict[str, Any]) -> list[dict[str, Any]]:
    helm = pytest.importorskip("helm_python")
    import yaml

    manifests = helm.Chart.load(CHART).render(values, name="kubeserve-x", namespace="user-x")
    return [
        doc
        for path, text in manifests.items()
        if path.endswith(".yaml")
        for doc in yaml.safe_load_all(text)
        if doc
    ]


def _kind(objects: list[dict[str, Any]], kind: str) -> dict[str, Any] | None:
    return next((o for o in objects if o["kind"] == kind), None)


CONFIG = KubernetesSettings(runtime_image="kubeserve/runtime-base:0.1.0", service_monitor=False)


def test_the_hpa_follows_the_deployment_settings() -> None:
    policy = AutoscalingPolicy(min_replicas=2, max_replicas=4, target_concurrency=2)
    objects = _render(chart_values(_spec(2, policy), _spec(2, policy).target, CONFIG))
    hpa = _kind(objects, "HorizontalPodAutoscaler")
    assert hpa is not None
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 4)
    [cpu] = hpa["spec"]["metrics"]
    assert cpu["resource"]["target"]["averageUtilization"] == 70


def test_the_quota_bounds_the_maximum_and_the_surge() -> None:
    policy = AutoscalingPolicy(min_replicas=1, max_replicas=5, target_concurrency=2)
    spec = _spec(1, policy)
    # The tenant's other deployments want 3 of its 5 pods: this one may grow to 2, surge none.
    objects = _render(chart_values(spec, spec.target, CONFIG, other_pods=3))
    hpa = _kind(objects, "HorizontalPodAutoscaler")
    assert hpa is not None and hpa["spec"]["maxReplicas"] == 2
    deployment = _kind(objects, "Deployment")
    assert deployment is not None
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxSurge"] == 0
    alone = _render(chart_values(spec, spec.target, CONFIG))
    hpa = _kind(alone, "HorizontalPodAutoscaler")
    assert hpa is not None and hpa["spec"]["maxReplicas"] == 5  # quota 5: max 5, no surge


def test_scale_to_zero_runs_one_pod_and_the_concurrency_metric_is_optional() -> None:
    policy = AutoscalingPolicy(min_replicas=0, max_replicas=3, target_concurrency=1.5)
    spec = _spec(1, policy)
    config = CONFIG.model_copy(update={"autoscaling_concurrency_metric": "kubeserve_in_flight"})
    hpa = _kind(_render(chart_values(spec, spec.target, config)), "HorizontalPodAutoscaler")
    assert hpa is not None and hpa["spec"]["minReplicas"] == 1
    pods = [m for m in hpa["spec"]["metrics"] if m["type"] == "Pods"]
    assert pods == [
        {
            "type": "Pods",
            "pods": {
                "metric": {"name": "kubeserve_in_flight"},
                "target": {"type": "AverageValue", "averageValue": "1.5"},
            },
        }
    ]
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    kubernetes_validate.validate(hpa, "1.30.0", strict=True)  # a valid autoscaling/v2 object


def test_a_fixed_replica_count_has_no_hpa() -> None:
    spec = _spec(2, None)
    objects = _render(chart_values(spec, spec.target, CONFIG))
    assert _kind(objects, "HorizontalPodAutoscaler") is None
    deployment = _kind(objects, "Deployment")
    assert deployment is not None and deployment["spec"]["replicas"] == 2
    off = CONFIG.model_copy(update={"autoscaling_enabled": False})
    policy = AutoscalingPolicy(min_replicas=1, max_replicas=3, target_concurrency=2)
    assert (
        _kind(
            _render(chart_values(_spec(1, policy), _spec(1, policy).target, off)),
            "HorizontalPodAutoscaler",
        )
        is None
    )
