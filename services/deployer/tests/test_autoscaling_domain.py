"""The autoscaler's decisions on simulated seconds: up fast under a burst, steady under steady
load (no flapping), down only after the cool-down, to zero only when allowed and idle long
enough, back up when woken."""

from __future__ import annotations

import pytest
from kubeserve_deployer.domain.autoscaling import (
    Autoscaler,
    AutoscalerTuning,
    AutoscalingPolicy,
)


def run(
    scaler: Autoscaler, load: list[float], *, start: float = 0.0, current: int = 1
) -> list[int]:
    """Feed one sample per second; replicas become ready at once. Returns desired per second."""
    out = []
    now = start
    for in_flight in load:
        now += 1.0
        scaler.observe(now, in_flight)
        current = scaler.decide(now, ready=current, current=current).desired
        out.append(current)
    return out


def policy(**kw: float) -> AutoscalingPolicy:
    values: dict[str, float] = {"min_replicas": 1, "max_replicas": 3, "target_concurrency": 2}
    values.update(kw)
    return AutoscalingPolicy(**values)  # type: ignore[arg-type]


def test_a_burst_scales_up_within_seconds_and_respects_max() -> None:
    scaler = Autoscaler(policy())
    desired = run(scaler, [0.0] * 10 + [16.0] * 5)
    assert desired[:10] == [1] * 10
    # 16 in flight at a target of 2 asks for 8; max is 3, reached within 5 s of the burst.
    assert 3 in desired[10:15]
    assert max(desired) == 3


def test_steady_load_holds_a_steady_count() -> None:
    scaler = Autoscaler(policy(max_replicas=10))
    desired = run(scaler, [5.0] * 180)
    settled = desired[70:]
    assert set(settled) == {3}, settled  # ceil(5 / 2), and nothing else for 110 seconds


def test_noisy_load_around_a_boundary_does_not_flap() -> None:
    scaler = Autoscaler(policy(max_replicas=10))
    noisy = [3.2 if i % 2 else 4.4 for i in range(400)]  # above 4 every other second
    desired = run(scaler, noisy)
    # The first spike panics (one replica, 4.4 in flight); once the panic and the scale-down
    # delay have passed it settles on ceil(3.8 / 2) and stays there.
    assert desired[0] == 3
    assert set(desired[130:]) == {2}, desired[130:]


def test_scale_down_waits_for_the_cool_down() -> None:
    tuning = AutoscalerTuning(stable_window=20, panic_window=4, scale_down_delay=30)
    scaler = Autoscaler(policy(), tuning)
    desired = run(scaler, [16.0] * 10)
    assert desired[-1] == 3
    after = run(scaler, [0.0] * 90, start=10, current=3)
    # Nothing is released during the delay window after the load stopped ...
    assert after[:25] == [3] * 25
    # ... and it is back to the minimum once the windows have passed.
    assert after[-1] == 1
    assert min(after) == 1  # never below min_replicas


def test_min_replicas_zero_goes_to_zero_only_after_the_idle_period_and_wakes() -> None:
    tuning = AutoscalerTuning(stable_window=10, panic_window=2, scale_down_delay=5)
    scaler = Autoscaler(policy(min_replicas=0, scale_to_zero_after=30), tuning)
    desired = run(scaler, [4.0] * 5 + [0.0] * 40)
    assert desired[5:30] and min(desired[5:30]) >= 1  # not before 30 s of idleness
    assert desired[-1] == 0
    decision = scaler.decide(46.0, ready=0, current=0)
    assert decision.desired == 0 and "nothing in flight" in decision.reason
    scaler.wake(46.5)
    assert scaler.decide(46.5, ready=0, current=0).desired >= 1


def test_scale_to_zero_does_not_wait_for_the_longer_windows() -> None:
    # One request, then silence: 10 s idle is enough even with a 60 s window and delay.
    scaler = Autoscaler(policy(min_replicas=0, scale_to_zero_after=10), AutoscalerTuning())
    desired = run(scaler, [1.0] + [0.0] * 15)
    assert desired[1:10] and min(desired[1:10]) == 1  # a replica while recently busy
    assert desired[-1] == 0


def test_min_replicas_above_zero_never_scales_to_zero() -> None:
    scaler = Autoscaler(policy(min_replicas=2, max_replicas=4), AutoscalerTuning(10, 2))
    assert set(run(scaler, [0.0] * 400, current=2)) == {2}


def test_reason_says_what_was_seen() -> None:
    scaler = Autoscaler(policy())
    scaler.observe(1.0, 7.5)
    decision = scaler.decide(1.0, ready=1, current=1)
    assert decision.panic and decision.desired == 3
    assert "7.5 in flight" in decision.reason and "bounded to 1..3" in decision.reason


@pytest.mark.parametrize(
    "kw", [{"min_replicas": 4, "max_replicas": 3}, {"target_concurrency": 0}, {"min_replicas": -1}]
)
def test_invalid_policies_are_refused(kw: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        policy(**kw)
