"""The gateway's load tracker (services/load.py): least-in-flight order, the time-weighted
figures reported to the autoscaler, and holding a request for a deployment at zero."""

from __future__ import annotations

import asyncio

import pytest
from kubeserve_gateway.services.load import HoldRefused, LoadReporter, LoadTracker, ScaledToZero


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_least_in_flight_first_ties_keep_the_rotation() -> None:
    load = LoadTracker()
    a, b, c = "unix:/a.sock", "unix:/b.sock", "unix:/c.sock"
    assert load.order([b, c, a]) == [b, c, a]
    with load.sending(a), load.sending(a), load.sending(b):
        assert load.order([a, b, c]) == [c, b, a]
        assert load.order([b, a, c]) == [c, b, a]
    assert load.order([a, b, c]) == [a, b, c]  # all idle again: as given


def test_reported_figures_are_time_weighted_and_stop_when_idle() -> None:
    clock = Clock()
    load = LoadTracker(clock)
    with load.track("d1"):
        with load.track("d1"):
            clock.now += 0.5  # 2 in flight for half a second...
        clock.now += 0.5  # ...then 1 for half a second
        assert load.averages() == {"d1": 1.5}
    clock.now += 1.0
    assert load.averages() == {"d1": 0.0}  # once, so the deployer sees the load drop
    clock.now += 1.0
    assert load.averages() == {}  # idle: nothing sent


def test_a_request_just_arrived_counts_whole() -> None:
    clock = Clock()
    load = LoadTracker(clock)
    assert load.averages() == {}
    with load.track("d1"):
        assert load.averages() == {"d1": 1.0}  # a held request must wake the deployment


async def test_hold_waits_for_a_replica_then_answers() -> None:
    load = LoadTracker()
    ready: list[str] = []
    forgotten: list[str] = []

    async def lookup() -> list[str]:
        if not ready:
            raise ScaledToZero("scaled to zero")
        return ready

    async def replica_starts() -> None:
        await asyncio.sleep(0.2)
        ready.append("unix:/r.sock")

    starter = asyncio.ensure_future(replica_starts())
    with load.track("d1"):
        got = await load.hold(
            "d1", lookup, forgotten.append, timeout=10, max_held=2, poll=0.01, refresh=0.05
        )
    await starter
    assert got == ["unix:/r.sock"]
    assert load.wake.is_set()  # the reporter was told at once
    assert forgotten and set(forgotten) == {"d1"}


async def test_hold_is_bounded_in_time_and_queue() -> None:
    load = LoadTracker()

    async def never() -> list[str]:
        raise ScaledToZero("scaled to zero")

    with pytest.raises(HoldRefused) as timed_out:
        await load.hold("d1", never, lambda _: None, timeout=0.1, max_held=5, poll=0.01)
    assert timed_out.value.http_status == 503
    assert timed_out.value.headers["Retry-After"] == "2"
    assert "none ready within 0.1s" in timed_out.value.message

    waiting = asyncio.ensure_future(
        load.hold("d1", never, lambda _: None, timeout=5, max_held=1, poll=0.01)
    )
    await asyncio.sleep(0.05)
    with pytest.raises(HoldRefused) as full:
        await load.hold("d1", never, lambda _: None, timeout=5, max_held=1, poll=0.01)
    assert "1 requests already wait" in full.value.message
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting


def test_a_request_too_short_to_measure_still_counts() -> None:
    clock = Clock()
    load = LoadTracker(clock)
    with load.track("d1"):
        pass  # answered (or refused) at once
    clock.now += 1.0
    assert load.averages() == {"d1": 0.001}  # the deployer must not think it idle


async def test_an_idle_reporter_sends_nothing_until_load_appears_then_reports_at_once() -> None:
    """Idle means idle: no periodic report while nothing is in flight, and the first request
    is reported without waiting for the period (here far longer than the test)."""
    load = LoadTracker()
    sent: list[dict[str, float]] = []
    arrived = asyncio.Event()

    async def send(figures: dict[str, float]) -> None:
        sent.append(figures)
        arrived.set()

    reporter = LoadReporter(load, send, interval=3600)
    await reporter.start()
    try:
        for _ in range(20):
            await asyncio.sleep(0)
        assert sent == []  # idle: nothing to say, and it waits instead of polling
        with load.track("d1"):
            await asyncio.wait_for(arrived.wait(), 10)
        assert sent == [{"d1": 1.0}]
    finally:
        await reporter.stop()
