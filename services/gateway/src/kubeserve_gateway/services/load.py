"""Predictions in flight (issue 12): the gateway sees every prediction, so it measures the load
the deployer's autoscaler scales on, spreads requests by least in flight, and holds a request
for a deployment scaled to zero while a replica starts.

- `LoadTracker.track(deployment)` counts a prediction from the moment its replica is chosen (or
  it starts being held) until the replica's answer arrives; `sending(endpoint)` counts per
  replica, and `order(endpoints)` puts the least busy first (ties keep the resolver's rotation).
- `averages()` is the time-weighted mean in flight per deployment since the previous call: what
  `LoadReporter` posts to the deployer about once a second, only for deployments with load or
  whose figure just dropped to zero (an idle gateway sends nothing).
- `hold(...)`: a deployment at zero replicas answers its next request instead of a 503: the
  request waits (bounded per deployment, up to a timeout) while the deployer starts a replica,
  woken by the report its own in-flight count triggers at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from kubeserve_common.waiting import cancel_and_wait, wait_for_wake

from kubeserve_gateway.domain.errors import NoReadyReplica, UpstreamUnavailable

log = logging.getLogger(__name__)


class ScaledToZero(NoReadyReplica):
    """The caller's own deployment is autoscaled to zero replicas: hold, do not fail."""


class HoldRefused(UpstreamUnavailable):
    code = "deployment_waking"


@dataclass
class _Gauge:
    count: int = 0
    area: float = 0.0  # request-seconds since the period started
    changed_at: float = 0.0
    period_start: float = 0.0
    reported_busy: bool = False
    arrivals: int = 0  # requests that started in this period


class LoadTracker:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._endpoints: dict[str, int] = {}
        self._gauges: dict[str, _Gauge] = {}
        self._held: dict[str, int] = {}
        self._refreshed: dict[str, float] = {}
        self.wake = asyncio.Event()  # the reporter sends at once (a held request waits)

    # -- counting ------------------------------------------------------------------------------
    # Both run twice per prediction: plain context managers, not @contextmanager generators
    # (a generator and its wrapper per request cost several times more).
    def track(self, deployment_id: str) -> _Counted:
        return _Counted(self._move, deployment_id)

    def sending(self, endpoint: str) -> _Counted:
        return _Counted(self._send, endpoint)

    def _send(self, endpoint: str, step: int) -> None:
        left = self._endpoints.get(endpoint, 0) + step
        if left:
            self._endpoints[endpoint] = left
        else:
            del self._endpoints[endpoint]

    def order(self, endpoints: list[str]) -> list[str]:
        """Least in flight first; `sorted` is stable, so equal ones keep the rotation."""
        if len(endpoints) < 2 or not self._endpoints:
            return endpoints
        return sorted(endpoints, key=lambda e: self._endpoints.get(e, 0))

    @property
    def watching(self) -> bool:
        """Some deployment has (or just had) load: the reporter has figures to send."""
        return bool(self._gauges)

    def in_flight(self, deployment_id: str) -> int:
        gauge = self._gauges.get(deployment_id)
        return gauge.count if gauge else 0

    def _move(self, deployment_id: str, step: int) -> None:
        now = self._clock()
        gauge = self._gauges.get(deployment_id)
        if gauge is None:
            gauge = self._gauges[deployment_id] = _Gauge(changed_at=now, period_start=now)
            self.wake.set()  # load where there was none: an idle reporter reports it at once
        gauge.area += gauge.count * (now - gauge.changed_at)
        gauge.changed_at = now
        gauge.count += step
        if step > 0:
            gauge.arrivals += 1

    # -- reporting -----------------------------------------------------------------------------
    def averages(self) -> dict[str, float]:
        """Mean in flight per deployment since the last call: deployments with load, plus a
        last 0 for those that had some; idle ones are dropped."""
        now = self._clock()
        figures: dict[str, float] = {}
        for deployment_id, gauge in list(self._gauges.items()):
            area = gauge.area + gauge.count * (now - gauge.changed_at)
            span = now - gauge.period_start
            mean = area / span if span > 0 else float(gauge.count)
            # A request that just arrived counts whole: a held request must wake the deployment.
            mean = max(mean, float(min(gauge.count, 1)))
            if gauge.arrivals and mean < 0.001:
                mean = 0.001  # a request came and went in no time: still not idle
            gauge.area, gauge.changed_at, gauge.period_start = 0.0, now, now
            gauge.arrivals = 0
            if mean > 0:
                figures[deployment_id] = round(mean, 3)
                gauge.reported_busy = True
            elif gauge.reported_busy:
                figures[deployment_id] = 0.0
                gauge.reported_busy = False
            elif gauge.count == 0:
                del self._gauges[deployment_id]
        return figures

    # -- holding -------------------------------------------------------------------------------
    async def hold(
        self,
        deployment_id: str,
        lookup: Callable[[], Awaitable[list[str]]],
        forget: Callable[[str], None],
        *,
        timeout: float,  # noqa: ASYNC109 (a deadline the loop checks, with a 503 message)
        max_held: int,
        poll: float = 0.05,
        refresh: float = 0.5,
    ) -> list[str]:
        """Wait until the deployment has a ready replica and return the candidates; 503 with
        Retry-After beyond `max_held` waiting requests or after `timeout` seconds. The caller
        tracks the request (`track`), which is what makes the deployer start a replica."""
        held = self._held.get(deployment_id, 0)
        if timeout <= 0:
            self.wake.set()  # not held, but the deployer still hears of the request
            raise HoldRefused(
                f"deployment {deployment_id} is scaled to zero and a replica is starting; "
                "retry shortly",
                headers={"Retry-After": "2"},
            )
        if held >= max_held:
            raise HoldRefused(
                f"deployment {deployment_id} is starting from zero replicas and "
                f"{held} requests already wait for it; retry shortly",
                headers={"Retry-After": "2"},
            )
        self._held[deployment_id] = held + 1
        self.wake.set()
        deadline = self._clock() + timeout
        try:
            while True:
                await asyncio.sleep(poll)
                # The route table learns of the new replica from the deployment's ready event;
                # a fresh lookup now and then (one per deployment, whatever waits) in case
                # that event is late.
                now = self._clock()
                if now - self._refreshed.get(deployment_id, 0.0) >= refresh:
                    self._refreshed[deployment_id] = now
                    forget(deployment_id)
                try:
                    return await lookup()
                except NoReadyReplica:
                    if self._clock() >= deadline:
                        raise HoldRefused(
                            f"deployment {deployment_id} is starting from zero replicas and "
                            f"had none ready within {timeout:g}s; retry shortly",
                            headers={"Retry-After": "2"},
                        ) from None
        finally:
            left = self._held[deployment_id] - 1
            if left:
                self._held[deployment_id] = left
            else:
                del self._held[deployment_id]
                self._refreshed.pop(deployment_id, None)


class _Counted:
    """`count(key, +1)` on entry, `count(key, -1)` on exit, whatever the exit."""

    __slots__ = ("count", "key")

    def __init__(self, count: Callable[[str, int], None], key: str) -> None:
        self.count = count
        self.key = key

    def __enter__(self) -> None:
        self.count(self.key, +1)

    def __exit__(self, *exc: object) -> None:
        self.count(self.key, -1)


class LoadReporter:
    """Posts `LoadTracker.averages()` to the deployer every `interval` seconds while there is
    load (at once when load appears or a request starts being held; nothing while idle). A
    failed post is logged once and dropped: the next report carries fresh figures."""

    def __init__(
        self,
        tracker: LoadTracker,
        send: Callable[[dict[str, float]], Awaitable[None]],
        *,
        interval: float = 1.0,
    ) -> None:
        self.tracker = tracker
        self.send = send
        self.interval = interval
        self._task: asyncio.Task[None] | None = None
        self._failing = False

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="load-reporter")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None

    async def _run(self) -> None:
        while True:
            # Every `interval` while there is load to report; an idle gateway sleeps until the
            # next request (its first `track` wakes this loop).
            await wait_for_wake(self.tracker.wake, self.interval if self.tracker.watching else None)
            self.tracker.wake.clear()
            figures = self.tracker.averages()
            if not figures:
                continue
            try:
                await self.send(figures)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not self._failing:
                    log.warning("cannot report load to the deployer", extra={"error": str(exc)})
                self._failing = True
            else:
                self._failing = False
