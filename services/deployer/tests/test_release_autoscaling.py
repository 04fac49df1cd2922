"""The HPA of charts/model-serving rendered from a deployment's autoscaling settings, with the
real Helm engine: min/max from the settings, the maximum and the rollout surge bounded by what
the tenant's 5-pod quota leaves (a surge pod only where it fits beside the other deployments'
HPA maxima), min_replicas 0 run as 1 pod (no HPA goes below one), the optional concurrency
metric, and no HPA for a fixed replica count."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from kubeserve_deployer.backends.kubernetes.pods import other_pods
from kubeserve_deployer.backends.kubernetes.release import chart_values
from kubeserve_deployer.backends.kubernetes.settings import KubernetesSettings
from kubeserve_deployer.domain.autoscaling import AutoscalingPolicy
from kubeserve_deployer.domain.deployments import DeploymentSpec, RevisionTarget

REPO = Path(__file__).resolve().parents[3]
CHART = REPO / "charts" / "model-serving"


def _spec(
    replicas: int, policy: AutoscalingPolicy | None, owner: uuid.UUID | None = None
) -> DeploymentSpec:
    owner = owner or uuid.uuid4()
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


def test_a_rollout_surges_only_when_the_pod_fits_beside_the_other_hpas_maxima() -> None:
    # One tenant, two autoscaled deployments (max 2 each, 1 replica now) and a fixed one of 1.
    owner = uuid.uuid4()
    policy = AutoscalingPolicy(min_replicas=1, max_replicas=2, target_concurrency=2)
    a, b, fixed = _spec(1, policy, owner), _spec(1, policy, owner), _spec(1, None, owner)

    def rendered(spec: DeploymentSpec, specs: list[DeploymentSpec]) -> dict[str, Any]:
        others = other_pods(specs, CONFIG)[spec.deployment_id]
        values = chart_values(
            spec, spec.target, CONFIG, other_pods=others.desired, other_most=others.most
        )
        objects = _render(values)
        hpa, deployment = _kind(objects, "HorizontalPodAutoscaler"), _kind(objects, "Deployment")
        assert hpa is not None and deployment is not None
        return {
            "max": hpa["spec"]["maxReplicas"],
            **deployment["spec"]["strategy"]["rollingUpdate"],
        }

    # a at 2, b at 2 and a surge pod: 5 pods, the quota: a surge pod fits.
    assert rendered(a, [a, b]) == {"max": 2, "maxSurge": 1, "maxUnavailable": 0}
    # With the fixed deployment's pod too, both HPAs at their maximum leave no room for a surge
    # pod (it would be refused and the rollout stall): one pod is replaced at a time instead,
    # though each HPA keeps its maximum (the others want only 2 pods now).
    for spec in (a, b):
        assert rendered(spec, [a, b, fixed]) == {"max": 2, "maxSurge": 0, "maxUnavailable": 1}
    # At most 2 + 2 + 1 = 5: the quota holds the three at their maxima, never more.


def test_a_minimum_the_quota_cannot_hold_is_held_at_the_maximum() -> None:
    # min_replicas 3, but the tenant's other deployments take 3 of the 5 pods by now: a valid
    # HPA (min <= max) at what is left, instead of a release the chart refuses.
    policy = AutoscalingPolicy(min_replicas=3, max_replicas=4, target_concurrency=2)
    spec = _spec(2, policy)
    values = chart_values(spec, spec.target, CONFIG, other_pods=3)
    hpa = _kind(_render(values), "HorizontalPodAutoscaler")
    assert hpa is not None and (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 2)


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
