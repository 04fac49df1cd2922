"""Crash recovery of the build queue, the embedded mode (SQLite, in-process bus, local artifact
directory) and the refusal to build where the machine cannot sandbox (no fallback)."""

from __future__ import annotations

import json
import logging
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from builder_helpers import RunsCommand, hostile_pickle, small_model, stored_upload
from kubeserve_builder.adapters.sandbox import ProbeResult
from kubeserve_builder.bootstrap import bootstrap
from kubeserve_builder.settings import BuilderSettings
from kubeserve_common.events.catalog import VersionBuildFailed, VersionBuilt, VersionUploaded
from kubeserve_common.events.envelope import CloudEvent
from kubeserve_common.events.topology import Topology
from kubeserve_common.messaging.bus import Subscription
from kubeserve_common.messaging.memory import InMemoryBus
from kubeserve_common.storage.local import LocalArtifactStore
from kubeserve_common.testing.waiting import wait_until

BUILT = VersionBuilt.event_type()
FAILED = VersionBuildFailed.event_type()


async def _insert_running(
    database_url: str, payload: VersionUploaded, attempts: int, worker: str
) -> None:
    """A build some builder claimed and then died with (its lease long expired)."""
    conn = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://"))
    now = datetime.now(UTC)
    try:
        await conn.execute(
            "INSERT INTO builder.builds (id, version_id, model_id, owner_id, version_tag, "
            "event_id, payload, status, attempts, lease_owner, lease_expires_at, heartbeat_at, "
            "created_at, updated_at, started_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 'running', "
            "$8, $9, $10, $10, $11, $11, $11)",
            uuid.uuid4(),
            payload.version_id,
            payload.model_id,
            payload.owner_id,
            payload.version_tag,
            str(uuid.uuid4()),
            json.dumps(payload.model_dump(mode="json")),
            attempts,
            worker,
            now - timedelta(minutes=5),
            now - timedelta(minutes=10),
        )
    finally:
        await conn.close()


async def test_builds_of_a_dead_builder_are_requeued_or_failed_after_the_last_attempt(
    start_builder: Any, database_url: str
) -> None:
    builder = await start_builder(build_lease_seconds=2, build_max_attempts=3)
    resumed, _ = await builder.upload(small_model(), publish=False)
    exhausted, _ = await builder.upload(small_model(), publish=False)
    await _insert_running(database_url, resumed, attempts=1, worker="dead-builder:1")
    await _insert_running(database_url, exhausted, attempts=3, worker="dead-builder:1")

    again = await builder.result(resumed.version_id)
    given_up = await builder.result(exhausted.version_id)

    assert again.type == BUILT, again.data
    assert given_up.type == FAILED
    assert given_up.data["stage"] == "builder"
    assert "3 attempts" in given_up.data["reason"]
    conn = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        row = await conn.fetchrow(
            "SELECT status, attempts FROM builder.builds WHERE version_id = $1",
            resumed.version_id,
        )
    finally:
        await conn.close()
    assert (row["status"], row["attempts"]) == ("succeeded", 2)


async def test_embedded_mode_builds_on_sqlite_with_the_in_process_bus(tmp_path: Path) -> None:
    settings = BuilderSettings(
        dev_mode=True,
        home=tmp_path,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'db' / 'builder.db'}",
        broker_url="memory://",
        artifact_store_url=(tmp_path / "artifacts").as_uri(),
        outbox_poll_interval=0.1,
        build_poll_interval=0.1,
        log_json=False,
    )
    bus = InMemoryBus("embedded")
    await bus.connect()
    results: list[CloudEvent] = []

    async def collect(event: CloudEvent) -> None:
        results.append(event)

    await bus.subscribe(
        Subscription(Topology().queue("observer", "results"), (BUILT, FAILED)), collect
    )
    container = bootstrap(settings, bus=bus)
    await container.start()
    try:
        store = LocalArtifactStore(tmp_path / "artifacts")
        payload, event = await stored_upload(store, small_model())
        owner, model = payload.owner_id, payload.model_id
        await bus.publish(event)
        await bus.publish(event)  # a duplicate delivery changes nothing
        await wait_until(lambda: bool(results), timeout=120, message="a build result")
        assert results[0].type == BUILT, results[0].data
        report = json.loads(await store.read_bytes(f"models/{owner}/{model}/v1/build-report.json"))
        assert report["outcome"] == "succeeded"
    finally:
        await container.stop()
        await bus.close()
    assert len(results) == 1


def _exists(path: Path) -> bool:
    return path.exists()


async def _cannot_sandbox() -> ProbeResult:
    # What the real probe says on a machine without namespaces (a container without
    # CAP_SYS_ADMIN, user namespaces switched off), given through the probe's port.
    return ProbeResult(False, "cannot create the sandbox's namespaces as root (EPERM)")


async def test_a_machine_that_cannot_sandbox_refuses_every_build_with_the_fix(
    start_builder: Any, caplog: pytest.LogCaptureFixture
) -> None:
    builder = await start_builder(sandbox_probe=_cannot_sandbox)
    marker = Path(f"/tmp/kubeserve-no-fallback-{uuid.uuid4().hex}")
    first, _ = await builder.upload(hostile_pickle(RunsCommand(f"touch {marker}")))
    second, _ = await builder.upload(small_model())

    refused = [await builder.result(p.version_id) for p in (first, second)]

    for event in refused:
        assert event.type == FAILED
        assert event.data["stage"] == "trial"
        assert "cannot create the sandbox's namespaces" in event.data["reason"]
        assert "KUBESERVE_INSECURE_NO_SANDBOX=1" in event.data["reason"]  # names the fix
    assert not _exists(marker)  # no fallback ran it
    checks = await builder.container.readiness()
    assert checks["builds"].startswith("failing")  # not ready: an operator sees it
    # Said once (when probed), not once per build or per worker.
    said = [r for r in caplog.records if "trial sandbox unavailable" in r.getMessage()]
    assert len(said) == 1


async def test_the_explicit_opt_out_builds_without_a_sandbox_and_warns_per_build_never(
    start_builder: Any, caplog: pytest.LogCaptureFixture
) -> None:
    builder = await start_builder(sandbox_probe=_cannot_sandbox, insecure_no_sandbox=True)
    payloads = [(await builder.upload(small_model()))[0] for _ in range(2)]

    events = [await builder.result(p.version_id) for p in payloads]

    assert [e.type for e in events] == [BUILT, BUILT]
    report = await builder.report(events[0])
    assert report["sandbox"]["mode"] == "insecure-none"
    warned = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert not [r for r in warned if "sandbox" in r.getMessage().lower()]


async def test_a_stopping_builder_puts_its_running_build_back_without_counting_it(
    start_builder: Any, database_url: str, wheel_index: Any
) -> None:
    from builder_helpers import PKG_NAME, with_package

    builder = await start_builder(trial_timeout_seconds=120)
    data = with_package(wheel_index[2], "Sleeper")  # its trial never ends by itself
    payload, _ = await builder.upload(data, requirements=f"{PKG_NAME}==0.1.0")
    dsn = database_url.replace("postgresql+asyncpg://", "postgresql://")

    async def status() -> tuple[str, int] | None:
        conn = await asyncpg.connect(dsn)
        try:
            row = await conn.fetchrow(
                "SELECT status, attempts FROM builder.builds WHERE version_id = $1",
                payload.version_id,
            )
        finally:
            await conn.close()
        return (row["status"], row["attempts"]) if row else None

    async def running() -> bool:
        return await status() == ("running", 1)

    await wait_until(running, timeout=60, message="the build to start")
    await builder.container.stop()

    assert await status() == ("queued", 0)
    assert builder.results_for(payload.version_id) == []
