"""Leader election of the kubernetes backend: the Lease rule (lease.py) and the elector
(leader.py) on `FakeKubernetes`, whose Leases follow the API's optimistic concurrency. Time is a
simulated monotonic clock stepped by the test, so "never two leaders" is checked at every step
of the scenarios, not measured."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from k8s_fakes import FakeCluster, FakeKubernetes
from kubeserve_deployer.backends.kubernetes.cluster import ClusterError
from kubeserve_deployer.backends.kubernetes.leader import LeaderElector
from kubeserve_deployer.backends.kubernetes.lease import (
    LeaseRecord,
    claim,
    format_micro_time,
    held_by_another,
    lease_object,
    parse_micro_time,
    record_of,
    released,
)
from kubeserve_deployer.backends.kubernetes.settings import KubernetesSettings

CONFIG = KubernetesSettings(
    service_account_namespace="kubeserve",
    lease_duration_seconds=15,
    renew_deadline_seconds=10,
    retry_period_seconds=2,
)
T0 = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


# -- the rule ----------------------------------------------------------------------------------


def test_lease_objects_round_trip_with_microsecond_utc_times() -> None:
    record = LeaseRecord("a", 15, acquire_time=T0, renew_time=T0, transitions=2)
    obj = lease_object("kubeserve", "kubeserve-deployer", record)
    assert obj["spec"] == {
        "holderIdentity": "a",
        "leaseDurationSeconds": 15,
        "leaseTransitions": 2,
        "acquireTime": "2026-01-02T03:04:05.678901Z",
        "renewTime": "2026-01-02T03:04:05.678901Z",
    }
    assert "resourceVersion" not in obj["metadata"]  # a create
    obj["metadata"]["resourceVersion"] = "7"
    assert record_of(obj) == LeaseRecord("a", 15, T0, T0, 2, "7")
    # A timezone other than UTC is converted, never written as if it were UTC.
    paris = T0.astimezone(__import__("zoneinfo").ZoneInfo("Europe/Paris"))
    assert format_micro_time(paris) == "2026-01-02T03:04:05.678901Z"
    assert parse_micro_time("2026-01-02T03:04:05.678901Z") == T0
    assert record_of({"metadata": {}, "spec": None}) == LeaseRecord("", 0)


def test_a_lease_belongs_to_its_holder_until_it_went_unchanged_for_its_duration() -> None:
    lease = LeaseRecord("b", 15, T0, T0)
    assert held_by_another(lease, "a", observed_at=100, now=114.9, default_duration=15)
    assert not held_by_another(lease, "a", observed_at=100, now=115, default_duration=15)
    assert not held_by_another(lease, "b", observed_at=100, now=101, default_duration=15)
    assert not held_by_another(
        released(lease, T0), "a", observed_at=100, now=100, default_duration=15
    )
    # A record without a duration falls back to ours.
    bare = LeaseRecord("b", 0)
    assert held_by_another(bare, "a", observed_at=100, now=110, default_duration=15)


def test_claiming_counts_transitions_and_keeps_the_acquire_time_on_renewal() -> None:
    first = claim(None, "a", 15, T0)
    assert (first.holder, first.transitions, first.acquire_time) == ("a", 0, T0)
    later = T0 + timedelta(seconds=2)
    renewed = claim(first, "a", 15, later)
    assert renewed.acquire_time == T0 and renewed.renew_time == later and renewed.transitions == 0
    taken = claim(renewed, "b", 15, later)
    assert taken.holder == "b" and taken.acquire_time == later and taken.transitions == 1


# -- the elector -------------------------------------------------------------------------------


def electors(*names: str) -> tuple[FakeCluster, Clock, list[LeaderElector]]:
    cluster, clock = FakeCluster(), Clock()
    made = [
        LeaderElector(FakeKubernetes(cluster), CONFIG, identity=n, clock=clock, wall=lambda: T0)
        for n in names
    ]
    return cluster, clock, made


def leaders(candidates: list[LeaderElector]) -> list[str]:
    return [c.identity for c in candidates if c.is_leader]


async def test_one_leader_renewing_and_the_other_waiting() -> None:
    cluster, clock, (a, b) = electors("a", "b")
    assert await a.attempt() and not await b.attempt()
    for _ in range(20):
        clock.now += 2
        await a.attempt()
        await b.attempt()
        assert leaders([a, b]) == ["a"]
    lease = cluster.leases[("kubeserve", "kubeserve-deployer")]
    assert lease.holder == "a" and lease.transitions == 0 and lease.duration_seconds == 15


async def test_a_leader_that_cannot_renew_stops_before_the_other_starts() -> None:
    _, clock, (a, b) = electors("a", "b")
    await a.attempt()
    await b.attempt()
    assert isinstance(a.kube, FakeKubernetes)
    # a's API calls fail from now on (a partition between a and the API server).
    a.kube.fail_next("read_lease", ClusterError("i/o timeout", transient=True), times=1000)
    seen_a_stop = seen_b_start = None
    for step in range(20):
        clock.now += 1
        await a.attempt()
        await b.attempt()
        current = leaders([a, b])
        assert len(current) <= 1, f"two leaders at +{step + 1}s"
        if not a.is_leader and seen_a_stop is None:
            seen_a_stop = clock.now
        if b.is_leader and seen_b_start is None:
            seen_b_start = clock.now
    assert seen_a_stop is not None and seen_b_start is not None
    assert seen_a_stop <= 100 + CONFIG.renew_deadline_seconds < seen_b_start
    assert seen_b_start >= 100 + CONFIG.lease_duration_seconds


async def test_a_graceful_stop_hands_over_at_once() -> None:
    cluster, clock, (a, b) = electors("a", "b")
    await a.attempt()
    await b.attempt()
    await a.release()
    assert not a.is_leader
    assert cluster.leases[("kubeserve", "kubeserve-deployer")].holder == ""
    clock.now += 0.5  # far less than the lease duration
    assert await b.attempt() and leaders([a, b]) == ["b"]
    lease = cluster.leases[("kubeserve", "kubeserve-deployer")]
    assert lease.holder == "b" and lease.transitions == 1


async def test_two_candidates_racing_for_a_free_lease_cannot_both_win() -> None:
    cluster, _, (a, b) = electors("a", "b")
    # Both read "no lease" before either writes: the second create is a 409.
    assert await a.attempt()
    cluster.leases.clear()  # as if b's read happened before a's create
    cluster.leases[("kubeserve", "kubeserve-deployer")] = LeaseRecord("a", 15, T0, T0, 0, "99")
    original = b.kube.read_lease

    async def stale_read(namespace: str, name: str) -> LeaseRecord | None:
        await original(namespace, name)
        return None  # b believes the Lease does not exist and tries to create it

    b.kube.read_lease = stale_read  # type: ignore[method-assign]
    assert not await b.attempt()
    assert leaders([a, b]) == ["a"]


async def test_leadership_changes_wake_the_owner_once_each() -> None:
    _, clock, (a,) = electors("a")
    calls: list[bool] = []
    a.on_change = lambda: calls.append(a.is_leader)
    await a.attempt()
    clock.now += 2
    await a.attempt()
    assert calls == [True]
    assert isinstance(a.kube, FakeKubernetes)
    a.kube.fail_next("read_lease", ClusterError("HTTP 503", status=503, transient=True), times=10)
    for _ in range(10):
        clock.now += 2
        await a.attempt()
    assert calls == [True, False]


@pytest.mark.parametrize("duration", [2.0, 15.0])
def test_settings_keep_the_deadline_below_the_duration(duration: float) -> None:
    with pytest.raises(ValueError, match="renew_deadline_seconds must be less than"):
        KubernetesSettings(lease_duration_seconds=duration, renew_deadline_seconds=duration)
