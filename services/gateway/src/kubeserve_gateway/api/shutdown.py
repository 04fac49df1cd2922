"""Ends the server-sent event streams as soon as the process is asked to stop.

Uvicorn waits for open responses to finish before it shuts the app down, and an event stream
never finishes by itself, so without this a SIGTERM (a pod being replaced) or a Ctrl+C would
wait for the server's graceful-shutdown timeout. The hook chains to whatever handler was
installed before it (uvicorn's, or the embedded runner's asyncio handler), so their behaviour
is unchanged."""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

from kubeserve_gateway.services.events import EventHub

_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_installed: set[int] = set()


def install_shutdown_hook(hub: EventHub, loop: asyncio.AbstractEventLoop) -> None:
    """Idempotent; a no-op off the main thread (signals can only be set there, e.g. tests)."""
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in _SIGNALS:
        if sig in _installed:
            continue
        previous = signal.getsignal(sig)
        signal.signal(sig, _chained(hub, loop, sig, previous))
        _installed.add(sig)


def _chained(
    hub: EventHub, loop: asyncio.AbstractEventLoop, sig: int, previous: Any
) -> Callable[[int, FrameType | None], None]:
    def handler(signum: int, frame: FrameType | None) -> None:
        # Signal handlers run between bytecodes: hand the work to the loop.
        if not loop.is_closed():
            loop.call_soon_threadsafe(hub.close_all)
        if callable(previous):
            previous(signum, frame)
        elif previous == signal.SIG_DFL:
            signal.signal(sig, signal.SIG_DFL)
            signal.raise_signal(sig)

    return handler
