"""Run model calls off the event loop, merging concurrent requests when batching is on.

Adaptive batching: requests queue while the model thread is busy; when it frees up, everything
queued (up to `max_batch_size` rows) becomes one model call, and the result is split back.
An idle server therefore adds no delay (a lone request runs at once), while a loaded one
amortises the per-call cost of the model (a 200-tree forest costs about the same for 1 row or
32). `max_wait_ms` optionally holds a batch open a little longer to let it grow, but only up
to the size of the previous batch: under steady concurrency the batch fills, while a lone
client (previous batch of one row) is never delayed. A lone small request whose model is fast
skips the worker thread altogether (see `INLINE_MAX_S`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from kubeserve_runtime.model import ModelAdapter

log = logging.getLogger("kubeserve_runtime.batching")

# A lone request runs on the event loop itself (no thread hop) when its model call is this
# small and has been this fast: a scaled logistic regression takes ~0.1 ms, the hop ~0.1 ms more.
INLINE_MAX_ROWS = 8
INLINE_MAX_S = 0.002


@dataclass
class _Item:
    x: Any
    rows: int
    want: frozenset[str]
    future: asyncio.Future[dict[str, np.ndarray]]
    key: tuple[Any, ...] = field(default=())


def _batch_key(x: Any) -> tuple[Any, ...]:
    # Only inputs of the same kind, columns and dtypes can be concatenated safely.
    if isinstance(x, pd.DataFrame):
        return ("frame", tuple(x.columns), tuple(str(t) for t in x.dtypes))
    arr = np.asarray(x)
    return ("array", arr.dtype.str, arr.shape[1:])


def _concat(xs: list[Any]) -> Any:
    if isinstance(xs[0], pd.DataFrame):
        return pd.concat(xs, ignore_index=True)
    return np.concatenate(xs, axis=0)


class ModelRunner:
    """Executes `adapter.run` on worker threads, with optional adaptive batching."""

    def __init__(
        self,
        adapter: ModelAdapter,
        *,
        max_batch_size: int = 32,
        max_wait_ms: float = 0.0,
        threads: int | None = None,
    ) -> None:
        self.adapter = adapter
        self.max_batch_size = max(1, int(max_batch_size))
        self.max_wait = max(0.0, float(max_wait_ms)) / 1000.0
        self.batching = self.max_batch_size > 1
        # Batches run one at a time by default: the point is to let requests pile up while
        # the model is busy. Without batching, a few threads overlap numpy's GIL-free work.
        default_threads = 1 if self.batching else min(4, os.cpu_count() or 1)
        self.threads = max(1, threads or default_threads)
        self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="model")
        self._pending: deque[_Item] = deque()
        self._wakeup: asyncio.Event | None = None
        self._slots: asyncio.Semaphore | None = None
        self._collector: asyncio.Task[None] | None = None
        self._inflight: set[asyncio.Task[None]] = set()
        self._last_rows = 1
        # Moving average of a small lone model call (None until one was timed) and the calls
        # now on worker threads: what decides whether a lone request may run inline.
        self._call_s: float | None = None
        self._threads_busy = 0
        # Called on the model thread with each batch's row count (metrics hook).
        self.on_batch: Callable[[int], None] | None = None

    async def start(self) -> None:
        if self.batching and self._collector is None:
            self._wakeup = asyncio.Event()
            self._slots = asyncio.Semaphore(self.threads)
            self._collector = asyncio.create_task(self._collect(), name="model-batcher")

    async def stop(self) -> None:
        if self._collector is not None:
            self._collector.cancel()
            try:
                await self._collector
            except asyncio.CancelledError:
                pass
            self._collector = None
        for item in self._pending:
            if not item.future.done():
                item.future.set_exception(RuntimeError("server is shutting down"))
        self._pending.clear()
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def run(self, x: Any, want: frozenset[str]) -> dict[str, np.ndarray]:
        loop = asyncio.get_running_loop()
        rows = int(x.shape[0])
        if not self.batching or self._collector is None:
            if self._inline(rows) and self._threads_busy == 0:
                return self._call(x, want, rows)
            return await self._in_thread(loop, x, want, rows)
        assert self._slots is not None
        if not self._pending and not self._slots.locked():
            # Idle server: nobody to merge with, so skip the queue and its extra loop turns.
            if self.on_batch is not None:
                self.on_batch(rows)
            if self._inline(rows):
                # A small, fast call: the thread hop would cost more than the call blocks the
                # loop. Nothing else runs meanwhile, so the model thread stays free.
                return self._call(x, want, rows)
            await self._slots.acquire()
            try:
                return await self._in_thread(loop, x, want, rows)
            finally:
                self._slots.release()
        future: asyncio.Future[dict[str, np.ndarray]] = loop.create_future()
        self._pending.append(_Item(x, rows, want, future, _batch_key(x)))
        assert self._wakeup is not None
        self._wakeup.set()
        return await future

    def _inline(self, rows: int) -> bool:
        return rows <= INLINE_MAX_ROWS and self._call_s is not None and self._call_s < INLINE_MAX_S

    def _call(self, x: Any, want: frozenset[str], rows: int) -> dict[str, np.ndarray]:
        """One model call, timed so the next lone request knows whether to run it inline."""
        started = time.perf_counter()
        try:
            return self.adapter.run(x, want)
        finally:
            if rows <= INLINE_MAX_ROWS:
                took = time.perf_counter() - started
                last = self._call_s
                self._call_s = took if last is None else 0.8 * last + 0.2 * took

    async def _in_thread(
        self, loop: asyncio.AbstractEventLoop, x: Any, want: frozenset[str], rows: int
    ) -> dict[str, np.ndarray]:
        self._threads_busy += 1
        try:
            return await loop.run_in_executor(self._pool, self._call, x, want, rows)
        finally:
            self._threads_busy -= 1

    async def _collect(self) -> None:
        assert self._wakeup is not None and self._slots is not None
        loop = asyncio.get_running_loop()
        while True:
            if not self._pending:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            # Wait for a free model thread before taking items: what arrives meanwhile joins.
            await self._slots.acquire()
            # Hold the batch open only while load says more is coming: up to the size of the
            # previous batch (a lone client never waits), at most max_wait.
            target = min(self.max_batch_size, self._last_rows)
            if self.max_wait > 0 and self._pending and self._queued_rows() < target:
                deadline = loop.time() + self.max_wait
                while self._queued_rows() < target:
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        break
                    self._wakeup.clear()
                    try:
                        await asyncio.wait_for(self._wakeup.wait(), remaining)
                    except TimeoutError:
                        break
            batch = self._take()
            if not batch:
                self._slots.release()
                continue
            self._last_rows = sum(item.rows for item in batch)
            task = asyncio.create_task(self._execute(batch))
            self._inflight.add(task)
            task.add_done_callback(self._inflight.discard)

    def _queued_rows(self) -> int:
        return sum(item.rows for item in self._pending)

    def _take(self) -> list[_Item]:
        batch: list[_Item] = []
        rows = 0
        while self._pending:
            item = self._pending[0]
            if batch and rows + item.rows > self.max_batch_size:
                break
            self._pending.popleft()
            if item.future.cancelled():
                continue  # the client went away
            batch.append(item)
            rows += item.rows
        return batch

    async def _execute(self, batch: list[_Item]) -> None:
        assert self._slots is not None
        loop = asyncio.get_running_loop()
        try:
            results = await loop.run_in_executor(self._pool, self._run_batch, batch)
            for item, result in zip(batch, results, strict=True):
                if item.future.done():
                    continue
                if isinstance(result, BaseException):
                    item.future.set_exception(result)
                else:
                    item.future.set_result(result)
        except BaseException as exc:  # every waiter must be released
            for item in batch:
                if not item.future.done():
                    item.future.set_exception(exc)
            if isinstance(exc, asyncio.CancelledError):
                raise
        finally:
            self._slots.release()

    def _run_batch(self, batch: list[_Item]) -> list[dict[str, np.ndarray] | BaseException]:
        """Worker thread: one model call per group of compatible inputs, split back."""
        results: list[dict[str, np.ndarray] | BaseException] = [
            RuntimeError("not run") for _ in batch
        ]
        groups: dict[tuple[Any, ...], list[int]] = {}
        for i, item in enumerate(batch):
            groups.setdefault(item.key, []).append(i)
        for indexes in groups.values():
            items = [batch[i] for i in indexes]
            if self.on_batch is not None:
                self.on_batch(sum(item.rows for item in items))
            if len(items) == 1:
                results[indexes[0]] = self._run_one(items[0])
                continue
            want = frozenset().union(*(item.want for item in items))
            try:
                merged = self.adapter.run(_concat([item.x for item in items]), want)
            except Exception:
                # One bad request must not fail its neighbours: rerun each on its own so the
                # error lands on the request that caused it.
                for i, item in zip(indexes, items, strict=True):
                    results[i] = self._run_one(item)
                continue
            start = 0
            for i, item in zip(indexes, items, strict=True):
                stop = start + item.rows
                results[i] = {k: v[start:stop] for k, v in merged.items() if k in item.want}
                start = stop
        return results

    def _run_one(self, item: _Item) -> dict[str, np.ndarray] | BaseException:
        try:
            return self.adapter.run(item.x, item.want)
        except Exception as exc:  # handed to the waiter
            return exc
