"""One deployer per runtime directory may act: an exclusive, non-blocking `flock` on
`{runtime_dir}/deployer.lock`; another deployer stands by and tries again each pass."""

from __future__ import annotations

import contextlib
import fcntl
import logging
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)


class DirectoryLock:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._fh: IO[str] | None = None
        self._waiting = False

    @property
    def held(self) -> bool:
        return self._fh is not None

    def try_acquire(self) -> bool:
        """Take the lock if free; True when this process holds it (now or already)."""
        if self._fh is not None:
            return True
        fh = open(self.directory / "deployer.lock", "a+")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.close()
            if not self._waiting:
                log.warning("another deployer drives %s; standing by", self.directory)
                self._waiting = True
            return False
        self._waiting = False
        self._fh = fh
        return True

    def release(self) -> None:
        if self._fh is None:
            return
        with contextlib.suppress(OSError):
            fcntl.flock(self._fh, fcntl.LOCK_UN)
        self._fh.close()
        self._fh = None
