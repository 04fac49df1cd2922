"""Pure parts of the kubernetes backend (backends/kubernetes/release.py): release and Service
names, image and artifact parsing, the pod limits within the tenant's quota, and how pod states
and events read as a rollout's outcome."""

from __future__ import annotations

import re
import uuid

import pytest
from kubeserve_deployer.backends.kubernetes.release import (
    ClusterEvent,
    ContainerProblem,
    PodState,
    WorkloadState,
    artifact_prefix,
    deployment_of,
    pod_limits,
    read_rollout,
    release_name,
    service_name,
    split_image,
)
from kubeserve_deployer.backends.kubernetes.settings import KubernetesSettings
from kubeserve_deployer.domain.autoscaling import AutoscalingPolicy


def test_release_names_are_dns_safe_helm_sized_and_reversible() -> None:
    for _ in range(50):
        d = uuid.uuid4()
        name = release_name(d)
        assert len(name) <= 53 and re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name)
        assert deployment_of(name) == d
        assert service_name(d) == f"model-{d}" and len(service_name(d)) <= 63
    assert deployment_of("kubeserve-not-a-uuid") is None
    assert deployment_of("prometheus") is None


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        (
            "ghcr.io/kubeserve/runtime-base:0.1.0",
            ("ghcr.io", "kubeserve/runtime-base", "0.1.0", ""),
        ),
        ("kubeserve/runtime-base:0.1.0", ("", "kubeserve/runtime-base", "0.1.0", "")),
        ("localhost:5000/rt:dev", ("localhost:5000", "rt", "dev", "")),
        ("rt@sha256:" + "a" * 64, ("", "rt", "", "sha256:" + "a" * 64)),
        ("registry.example.com:443/a/b", ("registry.example.com:443", "a/b", "", "")),
    ],
)
def test_split_image(image: str, expected: tuple[str, str, str, str]) -> None:
    got = split_image(image)
    assert (got["registry"], got["repository"], got["tag"], got["digest"]) == expected


def test_artifact_prefix_is_the_versions_folder() -> None:
    assert artifact_prefix("s3://b/models/u/m/v1/model.joblib") == "s3://b/models/u/m/v1/"
    assert artifact_prefix("s3://b/models/u/m/v1/") == "s3://b/models/u/m/v1/"
    assert artifact_prefix("s3://b/model.joblib") == "s3://b/model.joblib"  # no folder to take


def test_pod_limits_leave_the_tenants_other_deployments_their_pods() -> None:
    fixed = KubernetesSettings()  # no HPA: exactly the replicas asked for
    assert pod_limits(fixed, 1, 0) == (1, 2)  # room for a surge pod
    assert pod_limits(fixed, 2, 3) == (2, 2)  # 5 pods in use: no surge
    assert pod_limits(fixed, 3, 3) == (3, 2)  # more than the quota: the chart refuses it
    # The pods value changes only when the quota binds (a scale elsewhere upgrades nothing).
    assert pod_limits(fixed, 1, 1) == pod_limits(fixed, 1, 3) == (1, 2)
    hpa = KubernetesSettings(autoscaling_enabled=True)
    policy = AutoscalingPolicy(min_replicas=1, max_replicas=3, target_concurrency=2)
    assert pod_limits(hpa, 1, 0) == (1, 2)  # no autoscaling settings: a fixed count
    assert pod_limits(hpa, 1, 0, policy) == (3, 4)
    assert pod_limits(hpa, 1, 2, policy) == (3, 3)  # at the quota: the HPA's max, no surge
    assert pod_limits(hpa, 1, 3, policy) == (2, 2)  # the HPA may only grow into what is left
    assert pod_limits(hpa, 2, 3, policy) == (2, 2)
    off = KubernetesSettings(autoscaling_enabled=False)
    assert pod_limits(off, 1, 0, policy) == (1, 2)


def _pod(ready: bool, **kw: object) -> PodState:
    return PodState("p", {"kubeserve.io/revision": "2"}, "Running", ready, **kw)  # type: ignore[arg-type]


def test_read_rollout_counts_only_the_revision_asked_for() -> None:
    old = PodState("o", {"kubeserve.io/revision": "1"}, "Running", True)
    reading = read_rollout(2, None, [old, _pod(True), _pod(False)], [])
    assert reading.ready == 1 and reading.fatal is None


def test_progress_deadline_is_fatal_with_the_underlying_reason() -> None:
    workload = WorkloadState(
        2,
        2,
        1,
        1,
        0,
        0,
        (("Progressing", "False", "ProgressDeadlineExceeded", "ReplicaSet has timed out"),),
    )
    events = [ClusterEvent("Pod", "p", "FailedScheduling", "0/3 nodes are available")]
    reading = read_rollout(2, workload, [_pod(False)], events)
    assert reading.fatal == (
        "rollout stalled (ProgressDeadlineExceeded): FailedScheduling: 0/3 nodes are available"
    )


def test_config_errors_are_fatal_and_crashes_are_counted() -> None:
    secret = _pod(
        False,
        problem=ContainerProblem("waiting", "CreateContainerConfigError", 'secret "s3" not found'),
    )
    reading = read_rollout(2, None, [secret], [])
    assert reading.fatal is not None and 'secret "s3" not found' in reading.fatal
    crashed = _pod(
        False,
        restarts=2,
        problem=ContainerProblem("waiting", "CrashLoopBackOff", "back-off"),
        last_termination=ContainerProblem("terminated", "Error", "boom", 1),
    )
    reading = read_rollout(2, None, [crashed], [])
    assert reading.fatal is None and reading.start_failures == 2
    assert (
        reading.crash_reason
        == "CrashLoopBackOff, last exit: Error (exit code 1): boom (pod p, 2 restarts)"
    )
