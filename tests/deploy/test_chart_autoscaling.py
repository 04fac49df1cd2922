"""The platform chart's autoscaling values reach the deployer (issue 12.4): HPAs on by
default, the platform cap, the CPU target and the optional concurrency metric, as the
KUBESERVE_K8S_* variables the deployer's settings read - and what those settings make of them."""

from __future__ import annotations

from typing import Any

from kubeserve_deployer.backends.kubernetes.settings import KubernetesSettings

from tests.deploy.test_charts import env_of, find, ks


def _deployer_env(case: dict[str, Any]) -> dict[str, str]:
    deployer = next(
        d for d in find(ks(case), "Deployment") if d["metadata"]["name"] == "kubeserve-deployer"
    )
    env = env_of(deployer["spec"]["template"]["spec"]["containers"][0])
    return {k: v["value"] for k, v in env.items() if k.startswith("KUBESERVE_K8S_AUTOSCALING")}


def test_autoscaling_is_on_by_default() -> None:
    env = _deployer_env({})
    assert env == {
        "KUBESERVE_K8S_AUTOSCALING_ENABLED": "true",
        "KUBESERVE_K8S_AUTOSCALING_MAX_REPLICAS": "5",
        "KUBESERVE_K8S_AUTOSCALING_TARGET_CPU": "70",
        "KUBESERVE_K8S_AUTOSCALING_CONCURRENCY_METRIC": "",
    }
    settings = KubernetesSettings(
        **{k.removeprefix("KUBESERVE_K8S_").lower(): v for k, v in env.items()}
    )
    assert settings.autoscaling_enabled and settings.autoscaling_max_replicas == 5


def test_autoscaling_values_are_passed_on() -> None:
    case = {
        "deployer": {
            "kubernetes": {
                "autoscaling": {
                    "enabled": False,
                    "maxReplicas": 3,
                    "targetCPUUtilizationPercentage": 60,
                    "concurrencyMetric": "kubeserve_requests_in_flight",
                }
            }
        }
    }
    env = _deployer_env(case)
    settings = KubernetesSettings(
        **{k.removeprefix("KUBESERVE_K8S_").lower(): v for k, v in env.items()}
    )
    assert settings.autoscaling_enabled is False
    assert settings.autoscaling_max_replicas == 3
    assert settings.autoscaling_target_cpu == 60
    assert settings.autoscaling_concurrency_metric == "kubeserve_requests_in_flight"
