"""Pure rules: the quota arithmetic and runtime names (no I/O)."""

from __future__ import annotations

import pytest
from kubeserve_deployer.domain.model import Quota, QuotaExceeded, runtime_name


def test_quota_counts_replicas_and_cpu() -> None:
    quota = Quota(max_replicas=5, max_cpu=2.0, replica_cpu=0.4)
    quota.check(0, 5)  # 5 replicas = 2.0 CPU: exactly at both limits
    quota.check(4, 1)
    with pytest.raises(QuotaExceeded) as too_many:
        quota.check(4, 2)
    assert "(replicas)" in too_many.value.message
    assert too_many.value.details["usage"] == {"replicas": 4, "cpu": 1.6}
    assert too_many.value.http_status == 409 and too_many.value.code == "quota_exceeded"


def test_cpu_limit_can_bind_before_the_replica_limit() -> None:
    quota = Quota(max_replicas=5, max_cpu=2.0, replica_cpu=1.0)
    quota.check(1, 1)
    with pytest.raises(QuotaExceeded) as exc:
        quota.check(1, 2)
    assert "(CPU)" in exc.value.message and "3 CPU" in exc.value.message


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("Iris Classifier", "iris-classifier"),
        ("--x__y--", "x-y"),
        ("!!!", "model"),
        ("a" * 80, "a" * 63),
    ],
)
def test_runtime_name(given: str, expected: str) -> None:
    assert runtime_name(given) == expected
