"""The state of one served model: its adapter, its runner and its metrics, loaded once."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import Any

from kubeserve_runtime.batching import ModelRunner
from kubeserve_runtime.http import HttpError
from kubeserve_runtime.loaders import load_model
from kubeserve_runtime.metrics import RuntimeMetrics
from kubeserve_runtime.model import ModelAdapter
from kubeserve_runtime.settings import RuntimeConfig

log = logging.getLogger("kubeserve_runtime")


class Runtime:
    """`source` is a loaded model (the warm pool loads it after fork) or a path/URI that
    `start()` loads; readiness turns true only after the load."""

    def __init__(
        self, source: Any, name: str, version: str, config: RuntimeConfig, metrics: RuntimeMetrics
    ) -> None:
        self.source = source
        self.name = name
        self.version = version
        self.config = config
        self.metrics = metrics
        self.adapter: ModelAdapter | None = None
        self.runner: ModelRunner | None = None
        self.ready = False
        if not isinstance(source, str | os.PathLike):
            self._install(source)

    def _install(self, model: Any) -> None:
        self.adapter = ModelAdapter(model, self.name, self.version)
        self.runner = ModelRunner(
            self.adapter,
            max_batch_size=self.config.max_batch_size,
            max_wait_ms=self.config.max_batch_wait_ms,
            threads=self.config.model_threads,
        )
        self.runner.on_batch = self.metrics.observe_batch

    async def start(self) -> None:
        if self.adapter is None:
            started = time.perf_counter()
            model = await asyncio.to_thread(load_model, os.fspath(self.source))
            self._install(model)
            log.info(
                "model %s:%s loaded from %s in %.2fs",
                self.name,
                self.version,
                self.source,
                time.perf_counter() - started,
            )
        assert self.adapter is not None and self.runner is not None
        await asyncio.to_thread(self.adapter.learn_datatypes)
        await self.runner.start()
        self.ready = True
        self.metrics.set_ready(True)

    async def stop(self) -> None:
        self.ready = False
        self.metrics.set_ready(False)
        if self.runner is not None:
            await self.runner.stop()

    def serves_version(self, version: str) -> bool:
        # Triton-style numeric versions: `1` names the version tagged `v1`.
        return version == self.version or (version.isdigit() and f"v{version}" == self.version)

    def check_model(self, name: str, version: str | None) -> ModelAdapter:
        if name != self.name:
            raise HttpError(404, f"Model with name {name} does not exist.")
        if version is not None and not self.serves_version(version):
            raise HttpError(404, f"Model {name} with version {version} does not exist.")
        if not self.ready or self.adapter is None:
            raise HttpError(503, f"Model with name {name} is not ready.")
        return self.adapter
