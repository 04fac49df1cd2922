"""Replica logs of the local backend: the files `{runtime_dir}/logs/{deployment}/{revision}-
{index}.log` its runtime processes write (stdout and stderr). Each replica index is read from
its newest revision's file; following polls the file like `tail -f`."""

from __future__ import annotations

import asyncio
import os
import re
from collections import deque
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

from kubeserve_deployer.adapters.logs import merge
from kubeserve_deployer.domain.logs import LogLine, LogQuery

_NAME = re.compile(r"^(\d+)-(\d+)\.log$")
# The runtime's `%(asctime)s` (local time) or an ISO 8601 instant at the start of a line.
_STAMP = re.compile(
    r"^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2})(?:[.,](\d{1,6}))?(Z|[+-]\d{2}:?\d{2})?"
)
INITIAL_READ_MAX = 16 * 2**20  # bytes read back from the end of a file before following


def line_time(text: str) -> datetime | None:
    """The instant a line starts with, else None. The replica writes these lines (a tenant's
    model prints what it likes): a stamp that is no real instant is no stamp."""
    found = _STAMP.match(text)
    if found is None:
        return None
    day, clock, fraction, zone = found.groups()
    try:
        stamp = datetime.fromisoformat(f"{day}T{clock}.{(fraction or '0').ljust(6, '0')}")
        if zone:
            zone = "+00:00" if zone == "Z" else zone
            return datetime.fromisoformat(stamp.isoformat() + zone).astimezone(UTC)
        return stamp.astimezone(UTC)  # naive: the machine's local time, as asctime writes it
    except (ValueError, OverflowError):  # an offset beyond 24 h, a year 1 or 9999 edge
        return None


class LocalLogSource:
    def __init__(self, log_dir: Path, *, poll: float = 0.2, tick: float = 15.0) -> None:
        self.log_dir = log_dir
        self.poll = poll
        self.tick = tick

    def _files(self, deployment_id: UUID) -> dict[int, Path]:
        newest: dict[int, tuple[int, Path]] = {}
        try:
            entries = list(os.scandir(self.log_dir / str(deployment_id)))
        except OSError:
            return {}
        for entry in entries:
            found = _NAME.match(entry.name)
            if found is None:
                continue
            revision, index = int(found.group(1)), int(found.group(2))
            if index not in newest or newest[index][0] < revision:
                newest[index] = (revision, Path(entry.path))
        return {index: path for index, (_, path) in newest.items()}

    async def replicas(self, owner_id: UUID, deployment_id: UUID) -> list[int]:
        return sorted(await asyncio.to_thread(self._files, deployment_id))

    async def stream(
        self, owner_id: UUID, deployment_id: UUID, replicas: Sequence[int], query: LogQuery
    ) -> AsyncIterator[LogLine | None]:
        files = await asyncio.to_thread(self._files, deployment_id)
        streams = [self._lines(files[i], i, query) for i in replicas if i in files]
        async for line in merge(streams, tick=self.tick):
            yield line

    async def _lines(self, path: Path, replica: int, query: LogQuery) -> AsyncIterator[LogLine]:
        fh = await asyncio.to_thread(open, path, "rb")
        try:
            size = os.fstat(fh.fileno()).st_size
            start = max(0, size - INITIAL_READ_MAX)
            await asyncio.to_thread(fh.seek, start)
            existing = await asyncio.to_thread(fh.read, size - start)
            lines = existing.split(b"\n")
            rest = lines.pop()  # an unfinished last line waits for its end
            if start:
                lines = lines[1:]  # the first one is cut
            if not query.follow and rest:
                lines.append(rest)  # not following: the unfinished line is the last one
                rest = b""
            stamp: list[datetime | None] = [None]
            # `tail` counts every line shown, the unfinished one too; tail=0 shows none (as
            # kubectl and the Kubernetes API); None: no limit.
            kept: deque[LogLine] = deque(maxlen=query.tail)
            for raw in lines:
                line = self._keep(raw, replica, query, stamp)
                if line is not None:
                    kept.append(line)
            for line in kept:
                yield line
            if not query.follow:
                return
            while True:
                chunk = await asyncio.to_thread(fh.read, 65536)
                if not chunk:
                    await asyncio.sleep(self.poll)
                    continue
                rest += chunk
                *complete, rest = rest.split(b"\n")
                for raw in complete:
                    line = self._keep(raw, replica, query, stamp)
                    if line is not None:
                        yield line
        finally:
            await asyncio.to_thread(fh.close)

    @staticmethod
    def _keep(
        raw: bytes, replica: int, query: LogQuery, stamp: list[datetime | None]
    ) -> LogLine | None:
        """The line, unless `since` excludes it. A line without a timestamp of its own (a
        traceback's lines, a print) is as old as the last stamped line before it."""
        text = raw.decode("utf-8", errors="replace").rstrip("\r")
        own = line_time(text)
        if own is not None:
            stamp[0] = own
        if query.since is not None and stamp[0] is not None and stamp[0] < query.since:
            return None
        return LogLine(replica=replica, text=text)
