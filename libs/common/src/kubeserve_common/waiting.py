"""How background loops wait: on a wake event, with a poll that backs off while nothing happens.

Every loop of the services (outbox relay, reconciler, autoscaler, build claims, load reports)
acts on a wake event when there is work and polls only as a safety net: the poll starts at
`initial`, doubles each time it runs out with nothing to do, up to `cap`, and a wake or work
found brings it back to `initial`. An idle process then wakes about twice a minute instead of
every second, and the latency of real work is the wake's, not the poll's.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any


async def wait_for_wake(event: asyncio.Event | None, timeout: float | None) -> bool:  # noqa: ASYNC109
    """Wait until `event` is set or `timeout` seconds pass (None: no limit; no event: a plain
    sleep). Returns whether the event was set. Does not clear it: the loop clears it before
    looking for work, so a wake landing during a pass is not lost."""
    if event is None:
        if timeout is None:
            raise ValueError("waiting for nothing without a timeout would never return")
        await asyncio.sleep(timeout)
        return False
    if event.is_set():
        return True
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), timeout)
    return event.is_set()


class Backoff:
    """The idle poll of one loop: `wait()` sleeps the current delay (or until woken) and doubles
    it when nothing woke it; `reset()` (work found) goes back to `initial`."""

    def __init__(self, initial: float, cap: float, *, factor: float = 2.0) -> None:
        if initial <= 0:
            raise ValueError("the initial delay must be positive")
        self.initial = initial
        self.cap = max(cap, initial)
        self.factor = factor
        self.delay = initial

    def reset(self) -> None:
        self.delay = self.initial

    def grow(self) -> float:
        """The delay to wait now; the next one is longer (up to `cap`)."""
        current = self.delay
        self.delay = min(self.cap, current * self.factor)
        return current

    async def wait(
        self, event: asyncio.Event | None = None, *, at_most: float | None = None
    ) -> bool:
        """Sleep the current delay, or less when `at_most` (something to watch sooner, e.g. a
        starting replica), or until `event` is set. A wake resets the delay; a wait that ran
        out doubles it, unless `at_most` cut it short (a deadline, not idleness). Returns
        whether the event woke it."""
        if at_most is not None and at_most < self.delay:
            woken = await wait_for_wake(event, max(0.0, at_most))
        else:
            woken = await wait_for_wake(event, self.grow())
        if woken:
            self.reset()
        return woken


@dataclass(frozen=True)
class Pace:
    """What one pass of a loop tells its idle poll: `busy` (work found, something to watch)
    brings the poll back to its initial delay; `at_most` caps the next wait (a deadline)."""

    busy: bool = False
    at_most: float | None = None


async def run_loop(
    one_pass: Callable[[], Awaitable[Pace]],
    idle: Backoff,
    wake: asyncio.Event,
    *,
    on_failure: Callable[[Exception], Pace],
) -> None:
    """A background loop: clear the wake, run a pass, wait as its `Pace` says (or until woken),
    for ever. A pass that raises is handed to `on_failure` (which logs it and says how soon to
    try again); cancellation stops the loop."""
    while True:
        wake.clear()
        try:
            pace = await one_pass()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            pace = on_failure(exc)
        if pace.busy:
            idle.reset()
        await idle.wait(wake, at_most=pace.at_most)


async def cancel_and_wait(task: asyncio.Task[Any] | None) -> None:
    """Stop a background task: cancel it and wait until it has finished (None: never started)."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
