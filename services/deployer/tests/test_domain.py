"""Pure rules: the quota arithmetic and runtime names (no I/O)."""

from __future__ import annotations

import pytest
from kubeserve_deployer.domain.deployments import Quota, QuotaExceeded, runtime_name


def test_quota_counts_replicas_and_cpu() -> None:
    quota = Quota(max_replicas=5, max_cpu=2.0, replica_cpu=0.4)
    quota.check(0, 5)  # 5 replicas = 2.0 CPU: exactly at both limits
    quota.check(4, 1)
    with pytest.raises(QuotaExceeded) as too_many:
        quota.check(4, 2)
    assert "(replicas)" in too_many.value.message
    assert too_many.value.details["usage"] == {"replicas": 4, "cpu": 1.6, "memory_mib": 3072}
    assert too_many.value.http_status == 409 and too_many.value.code == "quota_exceeded"


def test_cpu_limit_can_bind_before_the_replica_limit() -> None:
    quota = Quota(max_replicas=5, max_cpu=2.0, replica_cpu=1.0)
    quota.check(1, 1)
    with pytest.raises(QuotaExceeded) as exc:
        quota.check(1, 2)
    assert "(CPU)" in exc.value.message and "3 CPU" in exc.value.message


def test_memory_limit_binds_and_is_named() -> None:
    quota = Quota(5, 2.0, 0.4, max_memory_mib=4096, replica_memory_mib=1024)
    quota.check(3, 1)  # 4 GiB: exactly at the limit
    with pytest.raises(QuotaExceeded) as exc:
        quota.check(3, 2)
    assert "(memory)" in exc.value.message
    assert "5120 MiB" in exc.value.message and "3072 MiB) are in use" in exc.value.message


def test_headroom_is_what_an_autoscaler_may_still_add() -> None:
    quota = Quota(5, 2.0, 0.4)  # the defaults: 5 replicas, 2 CPU, 4 GiB at 768 MiB each
    assert [quota.headroom(n) for n in (0, 3, 5, 7)] == [5, 2, 0, 0]
    assert Quota(5, 2.0, 0.4, replica_memory_mib=2048).headroom(1) == 1


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
