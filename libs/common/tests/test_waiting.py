"""The idle wait of every background loop (kubeserve_common.waiting): a wake makes the loop run
at once, idle waits grow up to the cap, work or a wake bring them back. Real asyncio; no timing
thresholds (waits long enough that only the wake can end them in time, or the delays asked
for are read back)."""

from __future__ import annotations

import asyncio

import pytest
from kubeserve_common.waiting import Backoff, Pace, cancel_and_wait, run_loop, wait_for_wake


class RecordingBackoff(Backoff):
    """Records the delay each wait asked for (what an idle process would sleep)."""

    def __init__(self, initial: float, cap: float) -> None:
        super().__init__(initial, cap)
        self.asked: list[float] = []

    def grow(self) -> float:
        delay = super().grow()
        self.asked.append(delay)
        return delay


async def test_idle_waits_double_up_to_the_cap() -> None:
    backoff = RecordingBackoff(0.001, 0.01)
    for _ in range(6):
        assert await backoff.wait(asyncio.Event()) is False  # nothing woke it
    assert backoff.asked == [0.001, 0.002, 0.004, 0.008, 0.01, 0.01]


async def test_a_wake_ends_a_long_wait_and_resets_the_delay() -> None:
    backoff = Backoff(0.001, 3600)
    for _ in range(5):
        await backoff.wait()
    assert backoff.delay == pytest.approx(0.032)
    backoff.delay = 3600  # a long-idle loop: only the event can end this wait within the test
    event = asyncio.Event()
    waiter = asyncio.create_task(backoff.wait(event))
    await asyncio.sleep(0)
    assert not waiter.done()
    event.set()
    assert await asyncio.wait_for(waiter, 10) is True
    assert backoff.delay == 0.001  # the fast path again


async def test_work_found_resets_the_delay() -> None:
    backoff = Backoff(0.001, 1)
    for _ in range(4):
        await backoff.wait()
    assert backoff.delay > backoff.initial
    backoff.reset()
    assert backoff.delay == backoff.initial


async def test_a_deadline_shorter_than_the_delay_does_not_count_as_idle() -> None:
    backoff = RecordingBackoff(0.001, 3600)
    for _ in range(3):
        await backoff.wait()
    grown = backoff.delay
    # A starting replica to watch: the wait is the deadline's, and the idle delay is kept.
    assert await backoff.wait(asyncio.Event(), at_most=0.001) is False
    assert backoff.delay == grown
    assert len(backoff.asked) == 3


async def test_a_wake_set_before_the_wait_is_not_lost() -> None:
    event = asyncio.Event()
    event.set()  # e.g. a commit landed while the loop was busy with a pass
    assert await asyncio.wait_for(wait_for_wake(event, 3600), 10) is True


async def test_a_loop_on_the_helper_acts_on_every_wake_and_sleeps_between() -> None:
    """The shape every service loop has: clear, look for work, wait."""
    wake = asyncio.Event()
    backoff = Backoff(3600, 3600)  # the poll alone would never run a second pass in time
    passes = 0
    ran = asyncio.Condition()

    async def loop() -> None:
        nonlocal passes
        while True:
            wake.clear()
            async with ran:
                passes += 1
                ran.notify_all()
            await backoff.wait(wake)

    task = asyncio.create_task(loop())
    try:
        for expected in (1, 2, 3):
            async with ran:
                await asyncio.wait_for(ran.wait_for(lambda e=expected: passes >= e), 10)
            wake.set()
        async with ran:
            await asyncio.wait_for(ran.wait_for(lambda: passes >= 4), 10)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert passes == 4


async def test_run_loop_retries_a_failing_pass_at_the_pace_its_handler_says() -> None:
    """A pass that raises does not end the loop: `on_failure` sees the error and its deadline
    brings the next pass although the idle poll is an hour; cancelling stops the loop."""
    wake = asyncio.Event()
    failures: list[str] = []
    passes = 0
    succeeded = asyncio.Event()

    async def one_pass() -> Pace:
        nonlocal passes
        passes += 1
        if passes < 3:
            raise RuntimeError(f"pass {passes} broke")
        succeeded.set()
        return Pace()

    def on_failure(exc: Exception) -> Pace:
        failures.append(str(exc))
        return Pace(at_most=0.001)

    task = asyncio.create_task(run_loop(one_pass, Backoff(3600, 3600), wake, on_failure=on_failure))
    await asyncio.wait_for(succeeded.wait(), 10)
    await cancel_and_wait(task)
    assert task.cancelled()
    assert failures == ["pass 1 broke", "pass 2 broke"]
    assert passes == 3  # after a pass that went well, only the hour-long poll (or a wake) runs one


def test_waiting_for_nothing_forever_is_refused() -> None:
    with pytest.raises(ValueError, match="never return"):
        asyncio.run(wait_for_wake(None, None))
