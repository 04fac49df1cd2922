"""The build queue's age for `/metrics` (`kubeserve_build_queue_oldest_seconds`): one
aggregate query per poll interval (an index range on `status`), never one per scrape."""

from __future__ import annotations

import asyncio
import logging

from kubeserve_common.db.base import utcnow
from kubeserve_common.db.uow import UnitOfWorkFactory
from kubeserve_common.waiting import Backoff
from kubeserve_common.web.outages import log_loop_failure

from kubeserve_builder.metrics import QUEUE_WAIT, QueueWait
from kubeserve_builder.repositories.builds import BuildRepository

log = logging.getLogger(__name__)


class QueueAgeWatcher:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        interval: float,
        wait: QueueWait = QUEUE_WAIT,
        *,
        idle_max: float = 30.0,
    ) -> None:
        self.uow = uow
        self.interval = interval
        self.idle_max = idle_max
        self.wait = wait
        self._task: asyncio.Task[None] | None = None

    async def refresh(self) -> None:
        async with self.uow() as uow:
            since = await BuildRepository(uow.session).oldest_waiting_since(utcnow())
        self.wait.since = since.timestamp() if since is not None else None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="build-queue-age")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        self.wait.since = None  # nobody watches the queue from here any more

    async def _run(self) -> None:
        # While builds wait the age is a timestamp (the gauge stays exact between reads);
        # while the queue is empty the read backs off to `idle_max`.
        idle = Backoff(self.interval, self.idle_max)
        while True:
            try:
                await self.refresh()
                if self.wait.since is not None:
                    idle.reset()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # The last value stays (an unreachable database is its own alert).
                log_loop_failure(log, "reading the build queue's age failed", exc)
            await idle.wait()
