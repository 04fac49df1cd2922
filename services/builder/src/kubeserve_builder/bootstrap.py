"""Composition root of the builder service: the one place that builds its engine, bus, artifact
store, sandbox, wheel downloader, pipeline and build loop. The HTTP app, the worker and the tests
all get their container from `bootstrap()`; tests and the embedded runner may pass a bus (and a
store) of their own.

The build loop and the queue-age watcher (`kubeserve_build_queue_oldest_seconds`) run wherever
the consumers run (`start(consume=True)`): an HTTP-only process (`serve --no-consume`) neither
consumes uploads nor builds, and reports a queue age of 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kubeserve_common.messaging.bus import EventBus
from kubeserve_common.messaging.inbox import idempotent
from kubeserve_common.service import ServiceContainer, build_container
from kubeserve_common.storage import ArtifactStore, create_artifact_store

from kubeserve_builder.adapters.sandbox import SandboxProbe, TrialLimits, TrialSandbox
from kubeserve_builder.adapters.wheels import WheelDownloader, WheelSource
from kubeserve_builder.consumers.handlers import UPLOADS, uploads_handler
from kubeserve_builder.services.builds import BuildLoop, BuildQueries, BuildQueue
from kubeserve_builder.services.pipeline import BuildPipeline
from kubeserve_builder.services.queue_age import QueueAgeWatcher
from kubeserve_builder.settings import BuilderSettings

SERVICE = "builder"
MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


@dataclass(kw_only=True)
class BuilderContainer(ServiceContainer):
    settings: BuilderSettings
    store: ArtifactStore
    sandbox: TrialSandbox
    pipeline: BuildPipeline
    loop: BuildLoop
    queries: BuildQueries
    queue_age: QueueAgeWatcher

    async def start(self, *, consume: bool = True, relay: bool = True) -> None:
        await super().start(consume=consume, relay=relay)
        if consume:
            await self.store.ensure_bucket()
            self.loop.start()
            self.queue_age.start()

    async def stop(self) -> None:
        await self.queue_age.stop()
        await self.loop.stop()
        await super().stop()


def bootstrap(
    settings: BuilderSettings | None = None,
    *,
    bus: EventBus | None = None,
    store: ArtifactStore | None = None,
    sandbox_probe: SandboxProbe | None = None,
) -> BuilderContainer:
    settings = settings or BuilderSettings()
    base = build_container(SERVICE, settings, MIGRATIONS, bus=bus)
    the_store = store or create_artifact_store(settings)
    sandbox = TrialSandbox(
        TrialLimits(
            memory_bytes=settings.trial_memory_bytes,
            cpu_seconds=settings.trial_cpu_seconds,
            timeout_seconds=settings.trial_timeout_seconds,
            max_file_bytes=settings.trial_max_file_bytes,
            max_processes=settings.trial_max_processes,
            uid=settings.trial_uid,
        ),
        python=settings.trial_python,
        insecure_no_sandbox=settings.insecure_no_sandbox,
        probe=sandbox_probe,
    )
    wheels = WheelDownloader(
        WheelSource(
            index_url=settings.wheel_index_url,
            find_links=settings.wheel_find_links,
            python_version=settings.wheel_python_version,
            platforms=tuple(settings.wheel_platforms),
        ),
        timeout=settings.pip_timeout_seconds,
        network_timeout=settings.pip_network_timeout,
    )
    pipeline = BuildPipeline(the_store, sandbox, wheels, settings)
    loop = BuildLoop(base.uow, pipeline, sandbox, settings)
    container = BuilderContainer(
        **base.parts(),  # the common parts, settings included
        store=the_store,
        sandbox=sandbox,
        pipeline=pipeline,
        loop=loop,
        queries=BuildQueries(base.uow),
        queue_age=QueueAgeWatcher(
            base.uow, settings.build_poll_interval, idle_max=settings.build_idle_max
        ),
    )

    container.subscribe(
        "uploads",
        UPLOADS,
        idempotent(SERVICE, "uploads", container.uow, uploads_handler(BuildQueue(), loop.wake)),
    )
    container.extra_checks["artifact_store"] = the_store.check
    container.extra_checks["builds"] = loop.check
    container.ready_requires = container.ready_requires | {"builds"}
    if store is None:  # a store passed in belongs to the caller
        container.on_stop.append(the_store.close)
    return container
