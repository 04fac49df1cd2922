"""The replica-log port (where a deployment's log lines come from) and what both adapters share:
merging the replicas' streams into one, with idle ticks so a follower can send keep-alives.

Adapters: `backends.local.logs.LocalLogSource` (the local backend's log files) and
`backends.kubernetes.logs.KubernetesLogSource` (pod logs through the Kubernetes API).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Protocol
from uuid import UUID

from kubeserve_deployer.domain.logs import LogLine, LogQuery

_DONE = object()


class LogSource(Protocol):
    async def replicas(self, owner_id: UUID, deployment_id: UUID) -> list[int]:
        """The indexes of the replicas that have logs now."""

    def stream(
        self, owner_id: UUID, deployment_id: UUID, replicas: Sequence[int], query: LogQuery
    ) -> AsyncIterator[LogLine | None]:
        """The selected replicas' lines, merged; `None` now and then while following and idle."""


async def merge(
    streams: Sequence[AsyncIterator[LogLine]], *, tick: float
) -> AsyncIterator[LogLine | None]:
    """Lines of every stream in the order they arrive; `None` after `tick` idle seconds. Ends
    when every stream ended; the pumps are cancelled when the consumer stops early."""
    queue: asyncio.Queue[object] = asyncio.Queue(maxsize=1000)

    async def pump(stream: AsyncIterator[LogLine]) -> None:
        try:
            async for line in stream:
                await queue.put(line)
        finally:
            await queue.put(_DONE)

    tasks = [asyncio.create_task(pump(s)) for s in streams]
    running = len(tasks)
    try:
        while running:
            try:
                item = await asyncio.wait_for(queue.get(), tick)
            except TimeoutError:
                yield None
                continue
            if item is _DONE:
                running -= 1
            else:
                assert isinstance(item, LogLine)
                yield item
        for task in tasks:
            # A failed pump's error reaches the caller instead of vanishing.
            task.result()
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task
