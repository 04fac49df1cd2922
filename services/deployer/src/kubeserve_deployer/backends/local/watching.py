"""Exit notifications: a pidfd per replica process, read by the event loop, so a crash wakes
the reconciler at once instead of at the next health check. A pidfd works for any process,
not only our children (re-adopted replicas and the pool's forks included)."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable


class ExitWatcher:
    def __init__(self) -> None:
        self._pidfds: dict[str, int] = {}
        self.on_exit: Callable[[], None] | None = None

    def watch(self, key: str, pid: int | None) -> None:
        self.unwatch(key)
        if not pid or not hasattr(os, "pidfd_open"):
            return
        try:
            fd = os.pidfd_open(pid)
        except OSError:
            return  # already gone: the next pass notices
        self._pidfds[key] = fd
        asyncio.get_running_loop().add_reader(fd, self._exited, key, fd)

    def _exited(self, key: str, fd: int) -> None:
        if self._pidfds.get(key) == fd:
            self.unwatch(key)
        if self.on_exit is not None:
            self.on_exit()

    def unwatch(self, key: str) -> None:
        fd = self._pidfds.pop(key, None)
        if fd is None:
            return
        with contextlib.suppress(Exception):
            asyncio.get_running_loop().remove_reader(fd)
        with contextlib.suppress(OSError):
            os.close(fd)

    def unwatch_all(self) -> None:
        for key in list(self._pidfds):
            self.unwatch(key)
