"""The concurrency autoscaler's decision, Knative's KPA model: plain code, no I/O, no clock.

Every second the deployer records how many predictions were in flight for a deployment (the
time-weighted average the gateways report). From those samples:

- stable: desired = ceil(average over the stable window / target_concurrency);
- panic: the same over the short panic window; when it asks for at least `panic_threshold`
  times the replicas that are ready, the autoscaler panics: it scales up to the panic figure at
  once and never scales down until the load has been calm for a whole stable window;
- scale-down waits: the decision is the highest recommendation of the last `scale_down_delay`
  seconds, so a dip in traffic does not release replicas that the next burst needs (no flapping);
- scale to zero: with `min_replicas == 0`, after `scale_to_zero_after` seconds with nothing in
  flight the deployment goes to 0 replicas; the first request wakes it (the gateway holds it).

Bounded by min/max and, outside this module, by the tenant quota.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field


@dataclass(frozen=True)
class AutoscalingPolicy:
    """What a user sets on a deployment (the API's `autoscaling` object)."""

    min_replicas: int
    max_replicas: int
    target_concurrency: float
    scale_to_zero_after: float | None = None  # seconds idle; only with min_replicas == 0

    def __post_init__(self) -> None:
        if not 0 <= self.min_replicas <= self.max_replicas:
            raise ValueError("min_replicas must be between 0 and max_replicas")
        if self.target_concurrency <= 0:
            raise ValueError("target_concurrency must be positive")


@dataclass(frozen=True)
class AutoscalerTuning:
    """Platform-wide windows (settings); defaults users will not regret."""

    stable_window: float = 60.0
    panic_window: float = 6.0
    panic_threshold: float = 2.0
    scale_down_delay: float = 60.0
    max_scale_up_rate: float = 10.0  # at most x10 the ready replicas per decision
    default_scale_to_zero_after: float = 300.0

    def __post_init__(self) -> None:
        if not 0 < self.panic_window <= self.stable_window:
            raise ValueError("the panic window must be positive and within the stable window")


@dataclass(frozen=True)
class Decision:
    desired: int
    reason: str
    panic: bool
    stable_concurrency: float
    panic_concurrency: float


@dataclass
class Autoscaler:
    """The state of one deployment's autoscaler: its samples and recent recommendations."""

    policy: AutoscalingPolicy
    tuning: AutoscalerTuning = field(default_factory=AutoscalerTuning)
    _samples: deque[tuple[float, float]] = field(default_factory=deque)
    _recommendations: deque[tuple[float, int]] = field(default_factory=deque)
    _panic_since: float | None = None
    _last_busy: float | None = None
    _started: float | None = None

    def observe(self, now: float, in_flight: float) -> None:
        """Record the average number of requests in flight over the last sample period."""
        if self._started is None:
            self._started = now
        self._samples.append((now, max(0.0, in_flight)))
        if in_flight > 0:
            self._last_busy = now
        horizon = now - self.tuning.stable_window
        while self._samples and self._samples[0][0] < horizon:
            self._samples.popleft()

    def decide(self, now: float, ready: int, current: int) -> Decision:
        """The replica count to run now, given `ready` replicas and `current` desired."""
        policy, tuning = self.policy, self.tuning
        stable = self._average(now, tuning.stable_window)
        panic = self._average(now, tuning.panic_window)
        want_stable = math.ceil(stable / policy.target_concurrency - 1e-9)
        want_panic = math.ceil(panic / policy.target_concurrency - 1e-9)
        # A deployment scaled to zero has nothing ready: compare against one replica.
        base = max(ready, 1)
        if want_panic >= tuning.panic_threshold * base and want_panic > current:
            self._panic_since = now
        elif self._panic_since is not None and now - self._panic_since >= tuning.stable_window:
            self._panic_since = None
        panicking = self._panic_since is not None
        if panicking:
            desired = max(want_panic, current)
            why = f"{panic:.1f} in flight over {tuning.panic_window:g}s (panic)"
        else:
            desired = want_stable
            why = f"{stable:.1f} in flight over {tuning.stable_window:g}s"
        desired = min(desired, math.ceil(tuning.max_scale_up_rate * base))
        # Scale down only to the highest recommendation of the delay window.
        self._recommendations.append((now, desired))
        horizon = now - tuning.scale_down_delay
        while self._recommendations and self._recommendations[0][0] < horizon:
            self._recommendations.popleft()
        if desired < current:
            held = max(r for _, r in self._recommendations)
            if held > desired:
                desired = min(held, current)
                why += f"; scale-down held for {tuning.scale_down_delay:g}s"
        floor = policy.min_replicas
        if floor == 0 and not self._idle_long_enough(now):
            floor = 1
        elif floor == 0 and not panicking:
            # Idle for the whole scale-to-zero period: nothing needs a replica, whatever the
            # longer windows still remember of older load.
            desired = 0
        bounded = max(floor, min(policy.max_replicas, desired))
        if bounded == 0:
            why = f"nothing in flight for {self._idle_after():g}s"
        elif bounded != desired:
            why += f"; bounded to {floor}..{policy.max_replicas}"
        return Decision(bounded, why, panicking, stable, panic)

    def wake(self, now: float) -> None:
        """A request arrived for a deployment scaled to zero: it must run again at once."""
        self.observe(now, 1.0)

    def _idle_after(self) -> float:
        after = self.policy.scale_to_zero_after
        return self.tuning.default_scale_to_zero_after if after is None else after

    def _idle_long_enough(self, now: float) -> bool:
        quiet_since = self._last_busy if self._last_busy is not None else self._started
        return quiet_since is not None and now - quiet_since >= self._idle_after()

    def _average(self, now: float, window: float) -> float:
        values = [v for at, v in self._samples if at > now - window]
        return sum(values) / len(values) if values else 0.0


def policy_from(settings: dict[str, object]) -> AutoscalingPolicy:
    """The policy of a deployment's stored `autoscaling` object (the API validated it)."""
    after = settings.get("scale_to_zero_after_s")
    return AutoscalingPolicy(
        min_replicas=int(str(settings["min_replicas"])),
        max_replicas=int(str(settings["max_replicas"])),
        target_concurrency=float(str(settings["target_concurrency"])),
        scale_to_zero_after=None if after is None else float(str(after)),
    )


def initial_replicas(policy: AutoscalingPolicy) -> int:
    """Replicas to start with: the minimum, but one for a scale-to-zero deployment (it serves
    its first requests, then goes to zero when idle)."""
    return max(policy.min_replicas, 1)
