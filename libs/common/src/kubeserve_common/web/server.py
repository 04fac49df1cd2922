"""The uvicorn server every service runs (distributed `serve` and the embedded mode). uvicorn's
own wakes ten times a second to look for a shutdown; this one sleeps until the shutdown is asked
for, waking once a second for the `Date` header, so an idle server stays idle."""

from __future__ import annotations

import asyncio
import contextlib

import uvicorn


class Server(uvicorn.Server):
    TICK = 1.0  # seconds: the Date header's resolution, as with uvicorn's own refresh

    def __init__(self, config: uvicorn.Config) -> None:
        self._exit: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._should_exit = False
        super().__init__(config)

    @property
    def should_exit(self) -> bool:
        return self._should_exit

    @should_exit.setter
    def should_exit(self, value: bool) -> None:
        # Set by a signal handler or another task: wake the main loop at once.
        self._should_exit = value
        if value and self._exit is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(self._exit.set)

    async def main_loop(self) -> None:
        self._loop, self._exit = asyncio.get_running_loop(), asyncio.Event()
        # on_tick refreshes the headers when its counter is a multiple of 10 (it counts
        # uvicorn's tenths of a second): count in tens, one step per second.
        counter = 0
        while not await self.on_tick(counter):
            counter = (counter + 10) % 864000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._exit.wait(), self.TICK)
