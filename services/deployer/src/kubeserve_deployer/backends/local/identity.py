"""Process identity for the local backend: a replica is its pid *and* its kernel start time
(Linux /proc), so a reused pid is never mistaken for a replica; signalling and waiting on
processes that may not be our children (re-adopted replicas, the pool's forks)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time


def proc_start_time(pid: int) -> int | None:
    """Kernel start time of `pid` (clock ticks since boot), None when no such live process.
    A zombie counts as dead: nobody may have reaped it yet, but it serves nothing."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            stat = fh.read()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] in ("Z", "X", "x"):
        return None
    return int(fields[19])


def is_alive(pid: int | None, start_time: int | None) -> bool:
    if not pid:
        return False
    current = proc_start_time(pid)
    return current is not None and (start_time is None or current == start_time)


def signal_replica(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        try:
            same_group = os.getpgid(pid) == pid
        except ProcessLookupError:
            return
        # Replicas lead their own session and group: signal the group, so the sandbox's
        # supervisor and the confined process (and anything the runtime started) go too.
        if same_group:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)


async def wait_dead(pid: int, start_time: int | None, timeout: float) -> None:  # noqa: ASYNC109
    # Polling: an adopted replica is not our child, so there is nothing to wait() on.
    deadline = time.monotonic() + timeout
    while is_alive(pid, start_time) and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.02)
