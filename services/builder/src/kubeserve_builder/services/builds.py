"""The build queue's use cases: record a build for an upload (in the consumer's transaction),
and the build loop that claims, runs and finishes builds outside any broker delivery.

The consumer only inserts a `builds` row and acks, so a build never holds a delivery past the
broker's consumer timeout. The loop claims queued rows, renews a lease while the pipeline runs
(a heartbeat every third of `build_lease_seconds`), and finishes the row and writes the result
event to the outbox in one transaction. A row whose lease ran out (its builder died) is
re-queued by any builder's reaper, up to `build_max_attempts` runs; then it fails with stage
`builder`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kubeserve_common.db.base import utcnow
from kubeserve_common.db.uow import UnitOfWork, UnitOfWorkFactory
from kubeserve_common.errors import NotFound
from kubeserve_common.events.catalog import VersionBuildFailed, VersionBuilt, VersionUploaded
from kubeserve_common.events.envelope import CloudEvent
from kubeserve_common.security.principal import Principal
from kubeserve_common.waiting import Backoff
from kubeserve_common.web.outages import log_loop_failure
from pydantic import ValidationError

from kubeserve_builder.adapters.sandbox import SandboxUnavailable, TrialSandbox
from kubeserve_builder.domain.models import BuildStatus, Stage, TransientBuildError
from kubeserve_builder.metrics import BUILD_RETRIES, BUILD_STEP_SECONDS, BUILDS
from kubeserve_builder.repositories.builds import BuildRepository
from kubeserve_builder.repositories.orm import BuildRecord
from kubeserve_builder.services.pipeline import BuildOutcome, BuildPipeline
from kubeserve_builder.settings import BuilderSettings

log = logging.getLogger(__name__)
SERVICE = "builder"
_RESULT_NS = uuid.UUID("6f1d3c56-8a3e-4a8e-9a55-2f4f1b8e0b7c")


def _subject(model_id: uuid.UUID, version_tag: str) -> str:
    return f"models/{model_id}/versions/{version_tag}"


def result_event(payload: VersionBuilt | VersionBuildFailed) -> CloudEvent:
    """One result per version: a deterministic id lets consumers' inboxes drop a duplicate."""
    return CloudEvent.create(
        payload,
        service=SERVICE,
        subject=_subject(payload.model_id, payload.version_tag),
        tenant_id=str(payload.owner_id),
        event_id=str(uuid.uuid5(_RESULT_NS, f"{payload.version_id}:result")),
    )


class BuildQueue:
    """Recording builds (the consumer's side)."""

    async def enqueue(self, uow: UnitOfWork, payload: VersionUploaded, event_id: str) -> bool:
        """Queue a build for the uploaded version; False when it already has one (a
        duplicate event, or the registry re-announcing the same version)."""
        now = utcnow()
        added = await BuildRepository(uow.session).add_if_absent(
            {
                "id": uuid.uuid4(),
                "version_id": payload.version_id,
                "model_id": payload.model_id,
                "owner_id": payload.owner_id,
                "version_tag": payload.version_tag,
                "event_id": event_id,
                "payload": payload.model_dump(mode="json"),
                "status": BuildStatus.QUEUED.value,
                "attempts": 0,
                "created_at": now,
                "updated_at": now,
            }
        )
        log.info(
            "build queued" if added else "build already recorded",
            extra={"version_id": str(payload.version_id)},
        )
        return added


@dataclass
class BuildView:
    version_id: uuid.UUID
    model_id: uuid.UUID
    version_tag: str
    status: str
    attempts: int
    stage: str | None
    reason: str | None
    report_uri: str | None
    report: dict[str, Any] | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class BuildQueries:
    def __init__(self, uow: UnitOfWorkFactory) -> None:
        self.uow = uow

    async def get(self, principal: Principal, version_id: uuid.UUID) -> BuildView:
        """The caller's build of `version_id`; another tenant's is a 404 like a missing one."""
        async with self.uow() as uow:
            build = await BuildRepository(uow.session).for_version(principal.user_id, version_id)
            if build is None:
                raise NotFound("no build for this version")
            return BuildView(
                version_id=build.version_id,
                model_id=build.model_id,
                version_tag=build.version_tag,
                status=build.status,
                attempts=build.attempts,
                stage=build.stage,
                reason=build.reason,
                report_uri=build.report_uri,
                report=build.report,
                created_at=build.created_at,
                started_at=build.started_at,
                finished_at=build.finished_at,
            )


class BuildLoop:
    """Claims and runs builds, `build_concurrency` at a time, in the builder process."""

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        pipeline: BuildPipeline,
        sandbox: TrialSandbox,
        settings: BuilderSettings,
    ) -> None:
        self.uow = uow
        self.pipeline = pipeline
        self.sandbox = sandbox
        self.settings = settings
        self.worker_id = f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._tasks: list[asyncio.Task[None]] = []
        self._wake = asyncio.Event()
        self.blocked: str | None = None

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        if self._tasks:
            return
        self._wake = asyncio.Event()
        for n in range(self.settings.build_concurrency):
            self._tasks.append(asyncio.create_task(self._worker(), name=f"build-worker-{n}"))
        self._tasks.append(asyncio.create_task(self._reaper(), name="build-reaper"))

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        self.sandbox.kill_all()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if tasks:
            with contextlib.suppress(Exception):
                await self._release_leases()

    async def _release_leases(self) -> None:
        """Put this builder's interrupted builds back in the queue at once (a graceful stop is
        not the build's fault: the attempt does not count), instead of waiting for the lease
        to expire."""
        async with self.uow() as uow:
            released = await BuildRepository(uow.session).release_worker(self.worker_id, utcnow())
            await uow.commit()
        if released:
            BUILD_RETRIES.labels("builder_stopped").inc(released)
            log.info("released interrupted builds", extra={"count": released})

    def wake(self) -> None:
        self._wake.set()

    async def check(self) -> None:
        """Readiness: raise while builds cannot run (no acceptable sandbox here)."""
        if self.blocked:
            raise RuntimeError(self.blocked)

    # -- workers -------------------------------------------------------------------------------
    async def _worker(self) -> None:
        # The poll is the safety net for a wake this process did not get (an upload consumed
        # by another builder, a lease expiring): it backs off while the queue stays empty.
        idle = Backoff(self.settings.build_poll_interval, self.settings.build_idle_max)
        while True:
            try:
                try:
                    await self.sandbox.info()
                    self.blocked = None
                except SandboxUnavailable as exc:
                    # Not ready, and every build is refused with this reason (fail closed;
                    # the pipeline says so in the build's failure).
                    self.blocked = str(exc)
                claimed = await self._claim()
                if claimed is None:
                    await idle.wait(self._wake)
                    self._wake.clear()
                    continue
                idle.reset()
                await self._run(*claimed)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a database hiccup must not end the loop
                log_loop_failure(log, "build loop error", exc)
                await asyncio.sleep(self.settings.build_poll_interval)

    async def _claim(self) -> tuple[uuid.UUID, VersionUploaded | None, int, dict[str, Any]] | None:
        async with self.uow() as uow:
            build = await BuildRepository(uow.session).claim_next(
                self.worker_id, utcnow(), self.settings.build_lease_seconds
            )
            if build is None:
                return None
            raw = dict(build.payload)
            await uow.commit()
        try:
            payload: VersionUploaded | None = VersionUploaded.model_validate(raw)
        except ValidationError:
            payload = None
        return build.id, payload, build.attempts, raw

    async def _run(
        self,
        build_id: uuid.UUID,
        payload: VersionUploaded | None,
        attempt: int,
        raw: dict[str, Any],
    ) -> None:
        if payload is None:
            await self._finish_without_payload(build_id, "the stored upload event is invalid")
            return
        log.info(
            "build started",
            extra={"version_id": str(payload.version_id), "attempt": attempt},
        )
        heartbeat = asyncio.create_task(self._heartbeat(build_id))
        pipeline = asyncio.create_task(self.pipeline.run(payload, attempt))
        try:
            # Whichever ends first: the build, or the heartbeat finding the lease lost.
            done, _ = await asyncio.wait({heartbeat, pipeline}, return_when=asyncio.FIRST_COMPLETED)
            if pipeline not in done:
                pipeline.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await pipeline
                log.warning("lease lost, build abandoned", extra={"build_id": str(build_id)})
                return
            try:
                outcome = pipeline.result()
            except TransientBuildError as exc:
                await self._retry(build_id, payload, attempt, str(exc))
                return
            except Exception as exc:  # a bug in a step: retried, then failed, never a hot loop
                log.exception("build crashed", extra={"version_id": str(payload.version_id)})
                await self._retry(build_id, payload, attempt, f"{type(exc).__name__}: {exc}")
                return
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await heartbeat
            if not pipeline.done():
                pipeline.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await pipeline
        await self._finish(build_id, outcome)

    async def _heartbeat(self, build_id: uuid.UUID) -> None:
        interval = self.settings.build_lease_seconds / 3
        failures = 0
        while True:
            await asyncio.sleep(interval)
            try:
                async with self.uow() as uow:
                    ours = await BuildRepository(uow.session).heartbeat(
                        build_id, self.worker_id, utcnow(), self.settings.build_lease_seconds
                    )
                    await uow.commit()
                failures = 0
            except Exception as exc:  # the database may blink; the lease covers two more beats
                failures += 1
                log_loop_failure(log, "heartbeat failed", exc, level=logging.WARNING)
                if failures >= 2:
                    return
                continue
            if not ours:
                return

    async def _finish(self, build_id: uuid.UUID, outcome: BuildOutcome) -> None:
        event_payload: VersionBuilt | VersionBuildFailed | None = outcome.built or outcome.failed
        assert event_payload is not None
        async with self.uow() as uow:
            repo = BuildRepository(uow.session)
            build = await repo.owned_running(build_id, self.worker_id)
            if build is None:
                log.warning("build finished after losing its lease; result dropped")
                return
            failed = outcome.failed
            await repo.finish(
                build,
                utcnow(),
                succeeded=failed is None,
                stage=failed.stage if failed else None,
                reason=failed.reason if failed else None,
                report_uri=outcome.report_uri or None,
                report=outcome.report,
            )
            await uow.publish(result_event(event_payload))
            await uow.commit()
        BUILDS.labels(
            "failed" if outcome.failed else "succeeded",
            outcome.failed.stage if outcome.failed else "",
        ).inc()
        for step in outcome.report.get("steps", []):
            BUILD_STEP_SECONDS.labels(step["stage"]).observe(step["duration_ms"] / 1000)
        log.info(
            "build failed" if outcome.failed else "build succeeded",
            extra={
                "version_id": str(event_payload.version_id),
                "stage": outcome.failed.stage if outcome.failed else None,
            },
        )

    async def _retry(
        self, build_id: uuid.UUID, payload: VersionUploaded, attempt: int, reason: str
    ) -> None:
        async with self.uow() as uow:
            repo = BuildRepository(uow.session)
            build = await repo.owned_running(build_id, self.worker_id)
            if build is None:
                return
            if attempt >= self.settings.build_max_attempts:
                await self._give_up(uow, repo, build, payload, reason)
            else:
                delay = self.settings.build_retry_delay * attempt
                await repo.requeue(build, utcnow(), delay=delay, note=f"retrying: {reason}")
                BUILD_RETRIES.labels("transient").inc()
                log.warning("build will be retried", extra={"reason": reason[:300]})
            await uow.commit()

    async def _give_up(
        self,
        uow: UnitOfWork,
        repo: BuildRepository,
        build: BuildRecord,
        payload: VersionUploaded,
        reason: str,
    ) -> None:
        failed = VersionBuildFailed(
            model_id=payload.model_id,
            version_id=payload.version_id,
            version_tag=payload.version_tag,
            owner_id=payload.owner_id,
            stage=Stage.BUILDER.value,
            reason=f"the build could not complete after {build.attempts} attempts: {reason}"[:2000],
        )
        await repo.finish(
            build,
            utcnow(),
            succeeded=False,
            stage=failed.stage,
            reason=failed.reason,
            report_uri=None,
            report=None,
        )
        await uow.publish(result_event(failed))
        BUILDS.labels("failed", failed.stage).inc()

    async def _finish_without_payload(self, build_id: uuid.UUID, reason: str) -> None:
        async with self.uow() as uow:
            repo = BuildRepository(uow.session)
            build = await repo.owned_running(build_id, self.worker_id)
            if build is not None:
                await repo.finish(
                    build,
                    utcnow(),
                    succeeded=False,
                    stage=Stage.BUILDER.value,
                    reason=reason,
                    report_uri=None,
                    report=None,
                )
                await uow.commit()
        log.error("build dropped: %s", reason, extra={"build_id": str(build_id)})

    # -- crash recovery ------------------------------------------------------------------------
    async def _reaper(self) -> None:
        interval = max(1.0, self.settings.build_lease_seconds / 2)
        while True:
            try:
                await self.reap_expired()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log_loop_failure(log, "reaping expired builds failed", exc)
            await asyncio.sleep(interval)

    async def reap_expired(self) -> int:
        """Re-queue builds whose builder stopped renewing the lease; fail those that ran out
        of attempts. Returns how many rows changed."""
        async with self.uow() as uow:
            repo = BuildRepository(uow.session)
            now = utcnow()
            expired = await repo.expired(now)
            for build in expired:
                if build.attempts >= self.settings.build_max_attempts:
                    try:
                        payload = VersionUploaded.model_validate(build.payload)
                    except ValidationError:
                        await repo.finish(
                            build, now, succeeded=False, stage=Stage.BUILDER.value,
                            reason="the stored upload event is invalid", report_uri=None,
                            report=None,
                        )  # fmt: skip
                        continue
                    await self._give_up(
                        uow, repo, build, payload, "the builder running it stopped every time"
                    )
                else:
                    await repo.requeue(build, now, note="re-queued: its builder stopped")
                    BUILD_RETRIES.labels("lease_expired").inc()
                    log.warning(
                        "expired build re-queued", extra={"version_id": str(build.version_id)}
                    )
            await uow.commit()
        if expired:
            self.wake()
        return len(expired)
